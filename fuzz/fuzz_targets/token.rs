//! The answer-token decoder: forged tokens are refused, and signed payloads of any shape
//! (reaching the claims decoder behind the signature) decode or are refused, never panic;
//! reading which plan a token is meant for (before it is opened) never panics either.
#![no_main]

use chrono::{DateTime, Utc};
use kithd::answer::LinkSigner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let signer = LinkSigner::new(
        &[7u8; 32],
        "https://kithd.example.org",
        chrono::Duration::hours(24),
    )
    .unwrap();
    let now: DateTime<Utc> = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = signer.verify(text, now);
        // Which plan a token is meant for is read before it is opened.
        let _ = signer.routes(text);
    }
    let _ = signer.verify(&signer.sign(data), now);
});
