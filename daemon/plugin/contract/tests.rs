//! The contract's own tests: defaults, checked request maps, secrets kept out.

use super::*;

fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
    Response {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: String::new(),
        received: "2026-12-01T08:00:00Z".parse().unwrap(),
    }
}

#[test]
fn default_classification() {
    assert_eq!(
        resp(201, &[]).default_outcome(),
        Outcome::Sent { gateway_id: None }
    );
    assert_eq!(
        resp(429, &[("retry-after", "30")]).default_outcome(),
        Outcome::Retry {
            after: Some(Duration::from_secs(30)),
            reason: "HTTP 429".into()
        }
    );
    assert!(matches!(
        resp(503, &[]).default_outcome(),
        Outcome::Retry { after: None, .. }
    ));
    // An HTTP date counts from when the response arrived, whatever the clock says now.
    assert_eq!(
        resp(503, &[("retry-after", "Tue, 01 Dec 2026 08:01:30 GMT")]).retry_after(),
        Some(Duration::from_secs(90))
    );
    assert_eq!(
        resp(503, &[("retry-after", "Tue, 01 Dec 2026 07:00:00 GMT")]).retry_after(),
        Some(Duration::ZERO)
    );
    assert!(matches!(
        resp(400, &[]).default_outcome(),
        Outcome::Permanent { .. }
    ));
}

#[test]
fn request_maps_are_checked() {
    let mut m = Map::new();
    m.insert("type".into(), "http".into());
    assert_eq!(
        request_from_dynamic(m.clone().into())
            .unwrap_err()
            .to_string(),
        "an http request needs `url`"
    );
    m.insert("url".into(), "http://127.0.0.1/x".into());
    m.insert("bogus".into(), 1.into());
    assert_eq!(
        request_from_dynamic(m.into()).unwrap_err().to_string(),
        "unknown key `bogus` in a `http` request"
    );
    assert_eq!(request_from_dynamic(Dynamic::UNIT).unwrap(), Request::Skip);
    assert!(request_from_dynamic(Dynamic::from(5)).is_err());
}

#[test]
fn secrets_refused_in_json() {
    let mut m = Map::new();
    m.insert("k".into(), Dynamic::from(SecretText::named("x")));
    assert!(dynamic_to_json(&m.into()).is_err());
}

#[test]
fn secrets_are_withheld_from_reasons_even_when_cut_off() {
    let key = "kithd-test-secret-4f1c9a7e2b";
    assert_eq!(
        withhold_secret(&format!("HTTP 400 (gateway code {key})"), key),
        "HTTP 400 (gateway code [secret withheld])"
    );
    let cut = scrub_reason(&format!("{} {key}", "x".repeat(140)), "");
    let withheld = withhold_secret(&cut, key);
    assert!(withheld.ends_with("[secret withheld]…"), "{withheld}");
    assert!(!withheld.contains("kithd-te"), "{withheld}");
    // Too short to tell apart from ordinary words: left alone.
    assert_eq!(withhold_secret("HTTP 400 abc", "abc"), "HTTP 400 abc");
}
