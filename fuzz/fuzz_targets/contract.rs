//! The plugin contract decoder: whatever a script returns (any JSON-shaped value), reading
//! it as a request or as an `on_response` verdict gives a value or a clear error.
#![no_main]

use kithd::plugin::contract::{
    Response, json_to_dynamic, outcome_from_dynamic, request_from_dynamic,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let d = json_to_dynamic(&v);
    let _ = request_from_dynamic(d.clone());
    let response = Response {
        status: 429,
        headers: [(
            "retry-after".to_string(),
            String::from_utf8_lossy(data).into_owned(),
        )]
        .into_iter()
        .collect(),
        body: String::new(),
        received: chrono::DateTime::UNIX_EPOCH,
    };
    let _ = response.retry_after();
    let _ = response.default_outcome();
    let _ = outcome_from_dynamic(d, &response);
});
