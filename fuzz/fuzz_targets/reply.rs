//! The SMS reply parser: any text is an answer or nothing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some(a) = kithd::answer::parse_answer(text)
    {
        let _ = a.as_value();
        let fits = kithd::plan::Kind::ALL.into_iter().filter(|k| a.fits(*k));
        assert_eq!(fits.count(), 1, "an answer answers exactly one kind");
    }
});
