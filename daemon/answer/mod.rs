//! Answers: signed single-use answer links, the reading of answers from SMS replies and the
//! CLI, and the optional HTTP server that takes them, from gateways too. Owns the answer
//! vocabulary; it must not schedule or send reminders (escalation steps and all-clears go
//! through the ledger); it sends only the short list of choices back to a gateway reply
//! it did not understand.

pub(crate) mod charts;
mod contact;
pub(crate) mod front;
mod gateway;
pub(crate) mod http;
pub(crate) mod link;
mod me;
pub(crate) mod page;
mod reply;
pub(crate) mod serve;
pub(crate) use gateway::{Gateway, Replies, own_secrets, same_address};
mod token;
pub(crate) mod words;

pub use reply::{Answer, DEFAULT_SNOOZE, parse_answer, parse_snooze};
pub(crate) use reply::{parse_answer_in, parse_snooze_in};

/// The short list of choices sent back to a reply that wasn't understood.
pub(crate) fn choices_reply_text() -> String {
    reply::choices_reply(&[])
}
pub use token::{Claims, LinkSigner, TokenError};
