//! The plan loader and the property behind `check`: whatever the load step accepts
//! offline, rehearsing its first 1,000 firings (or ten years) neither panics nor loops.
#![no_main]

use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use kithd::diagnostic::SourceFile;
use kithd::load::{Secrets, load_source, rehearse};
use kithd::plugin::Registry;
use libfuzzer_sys::fuzz_target;

fn registry() -> Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY
        .get_or_init(|| Registry::load(std::path::Path::new("/nonexistent")).unwrap())
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let now: DateTime<Utc> = DateTime::from_timestamp(1_796_000_000, 0).unwrap();
    let source = SourceFile::new("plan.toml", text);
    match load_source(source, registry(), Secrets::Offline, now) {
        Ok(loaded) => {
            rehearse(&loaded.snapshot, now, 1000);
        }
        Err(failure) => {
            // Rendering every problem must not panic either.
            let _ = failure.render();
            let _ = failure.one_lines();
        }
    }
});
