//! Answers: signed single-use answer links, the reading of answers from SMS replies and the
//! CLI, and the optional HTTP server that takes them. Owns the answer vocabulary; it must
//! not schedule or send (escalation steps and all-clears go through the ledger).

pub(crate) mod http;
mod reply;
pub(crate) mod serve;
mod token;

pub use reply::{Answer, DEFAULT_SNOOZE, parse_answer, parse_snooze};
pub use token::{Claims, LinkSigner, TokenError};
