//! Bundled HTTP plugins against real HTTP servers on 127.0.0.1: exact Twilio, Vonage, ntfy
//! and webhook request shapes, the webhook signature checked by an independent
//! implementation (openssl), and outcome classification.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{basic_auth, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{Sandbox, text};

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn twilio_request_shape_and_gateway_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(
            "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages.json",
        ))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(basic_auth(
            "AC0123456789abcdef0123456789abcdef",
            "tw-token-xyz",
        ))
        .respond_with(
            ResponseTemplate::new(201).set_body_json(json!({"sid": "SM42", "status": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.sms]\nplugin = \"twilio\"\naccount_sid = \"AC0123456789abcdef0123456789abcdef\"\nauth_token = {{ secret = \"twilio_token\" }}\nfrom = \"+15005550006\"\napi_base = \"{}\"\n",
        server.uri()
    ));
    let out = sb
        .send_test(
            "sms",
            "sam",
            &[("KITHD_SECRET_TWILIO_TOKEN", "tw-token-xyz")],
        )
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "sent through `sms` (gateway id SM42)\n");
    let reqs = server.received_requests().await.unwrap();
    assert_eq!(reqs.len(), 1);
    let mut fields = form(&reqs[0].body);
    fields.sort();
    assert_eq!(
        fields,
        vec![
            (
                "Body".to_string(),
                "Time for your 50 mg, Alex. Grüße ☀".to_string()
            ),
            ("From".to_string(), "+15005550006".to_string()),
            ("To".to_string(), "+15550001111".to_string()),
        ]
    );
    // The token never shows in what kithd printed.
    assert!(
        !text(&out.stdout).contains("tw-token-xyz") && !text(&out.stderr).contains("tw-token-xyz")
    );
}

#[tokio::test]
async fn twilio_messaging_service_and_rejection() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"code": 21211, "message": "The 'To' number is not valid."})),
        )
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.sms]\nplugin = \"twilio\"\naccount_sid = \"AC1\"\nauth_token = {{ secret = \"twilio_token\" }}\nmessaging_service_sid = \"MG9\"\napi_base = \"{}\"\n",
        server.uri()
    ));
    let out = sb
        .send_test("sms", "self", &[("KITHD_SECRET_TWILIO_TOKEN", "t")])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        // The gateway's code, never its text (which may echo the message).
        text(&out.stdout) == "not sent, permanent failure: HTTP 400 (gateway code 21211)\n",
        "{}",
        text(&out.stdout)
    );
    let fields = form(&server.received_requests().await.unwrap()[0].body);
    assert!(fields.contains(&("MessagingServiceSid".into(), "MG9".into())));
    assert!(!fields.iter().any(|(k, _)| k == "From"));
}

#[tokio::test]
async fn vonage_request_shape_and_status_codes() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/sms/json"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message-count": "1", "messages": [{"status": "0", "message-id": "0A0000001234"}]})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"message-count": "1", "messages": [{"status": "1", "error-text": "Throttled"}]}),
        ))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"message-count": "1", "messages": [{"status": "4", "error-text": "Bad Credentials"}]})))
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.sms]\nplugin = \"vonage\"\napi_key = \"abcd1234\"\napi_secret = {{ secret = \"vonage_secret\" }}\nfrom = \"kithd\"\napi_base = \"{}\"\n",
        server.uri()
    ));
    let env = [("KITHD_SECRET_VONAGE_SECRET", "vsecret123")];
    let out = sb.send_test("sms", "self", &env).await;
    assert_eq!(
        text(&out.stdout),
        "sent through `sms` (gateway id 0A0000001234)\n",
        "{}",
        text(&out.stderr)
    );
    let mut fields = form(&server.received_requests().await.unwrap()[0].body);
    fields.sort();
    let expected: Vec<(String, String)> = [
        ("api_key", "abcd1234"),
        ("api_secret", "vsecret123"),
        ("from", "kithd"),
        ("text", "Time for your 50 mg, Alex. Grüße ☀"),
        ("to", "4915100000001"),
        ("type", "unicode"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(fields, expected);
    let out = sb.send_test("sms", "self", &env).await;
    assert_eq!(out.status.code(), Some(69));
    assert_eq!(
        text(&out.stdout),
        "not sent, retryable: Vonage status 1: Throttled (gateway asks to wait 30s)\n"
    );
    let out = sb.send_test("sms", "self", &env).await;
    assert_eq!(
        text(&out.stdout),
        "not sent, permanent failure: Vonage status 4: Bad Credentials\n"
    );
}

#[tokio::test]
async fn ntfy_request_shape() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/"))
        .and(header("authorization", "Bearer tk_abc"))
        .and(header("content-type", "application/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "n1"})))
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.push]\nplugin = \"ntfy\"\nserver = \"{}\"\ntoken = {{ secret = \"ntfy_token\" }}\n",
        server.uri()
    ));
    let out = sb
        .send_test("push", "self", &[("KITHD_SECRET_NTFY_TOKEN", "tk_abc")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let body: Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(
        body,
        json!({"topic": "alex-reminders", "title": "Test", "message": "Time for your 50 mg, Alex. Grüße ☀", "priority": 3, "tags": []})
    );
}

fn openssl_hmac(key: &str, body: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("body");
    std::fs::write(&f, body).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", key, "-r"])
        .arg(&f)
        .output()
        .expect("openssl is needed for the independent signature check");
    text(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn webhook_payload_idempotency_key_and_signature() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hooks/kithd"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.hook]\nplugin = \"webhook\"\nurl = \"{}/hooks/kithd\"\nsigning_secret = {{ secret = \"hook_key\" }}\nheaders = {{ X-Team = \"blue\" }}\n",
        server.uri()
    ));
    let out = sb
        .send_test("hook", "sam", &[("KITHD_SECRET_HOOK_KEY", "whsec-987")])
        .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let req = &server.received_requests().await.unwrap()[0];
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    let id = body["delivery_id"].as_str().unwrap().to_string();
    assert_eq!(
        req.headers
            .get("idempotency-key")
            .unwrap()
            .to_str()
            .unwrap(),
        id
    );
    assert_eq!(req.headers.get("x-team").unwrap().to_str().unwrap(), "blue");
    assert_eq!(
        req.headers.get("content-type").unwrap().to_str().unwrap(),
        "application/json"
    );
    assert_eq!(body["version"], 1);
    assert_eq!(body["recipient"], "sam");
    assert_eq!(body["kind"], "test");
    assert_eq!(body["text"], "Time for your 50 mg, Alex. Grüße ☀");
    let sig = req
        .headers
        .get("x-kithd-signature")
        .unwrap()
        .to_str()
        .unwrap();
    assert_eq!(
        sig,
        format!("sha256={}", openssl_hmac("whsec-987", &req.body))
    );
}

async fn webhook_outcome(url: &str, extra: &str) -> (Option<i32>, String, Duration) {
    let sb = Sandbox::new(&format!(
        "[channels.hook]\nplugin = \"webhook\"\nurl = \"{url}\"\ntimeout = \"2s\"\n{extra}"
    ));
    let t = Instant::now();
    let out = sb.send_test("hook", "self", &[]).await;
    (
        out.status.code(),
        text(&out.stdout) + text(&out.stderr).as_str(),
        t.elapsed(),
    )
}

#[tokio::test]
async fn classification_of_failures() {
    // Connection refused: a port that was free a moment ago.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, out, _) = webhook_outcome(&format!("http://127.0.0.1:{port}/x"), "").await;
    assert_eq!(
        (code, out.as_str()),
        (Some(69), "not sent, retryable: connection refused\n")
    );

    // A server that accepts and never answers: a clear timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (code, out, took) = webhook_outcome(&format!("http://{addr}/x"), "").await;
    assert_eq!(
        (code, out.as_str()),
        (Some(69), "not sent, retryable: no answer within 2s\n")
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    holder.abort();

    let server = MockServer::start().await;
    Mock::given(path("/500"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    Mock::given(path("/429"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "120"))
        .mount(&server)
        .await;
    Mock::given(path("/400"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad field"))
        .mount(&server)
        .await;
    let (code, out, _) = webhook_outcome(&format!("{}/500", server.uri()), "").await;
    assert_eq!(
        (code, out.as_str()),
        (Some(69), "not sent, retryable: HTTP 500\n")
    );
    let (code, out, _) = webhook_outcome(&format!("{}/429", server.uri()), "").await;
    assert_eq!(
        (code, out.as_str()),
        (
            Some(69),
            "not sent, retryable: HTTP 429 (gateway asks to wait 120s)\n"
        )
    );
    let (code, out, _) = webhook_outcome(&format!("{}/400", server.uri()), "").await;
    assert_eq!(
        (code, out.as_str()),
        (Some(1), "not sent, permanent failure: HTTP 400\n")
    );
}

#[tokio::test]
async fn a_plugins_own_on_response_and_the_one_host_rule() {
    let server = MockServer::start().await;
    Mock::given(path("/api"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"ok": false, "error": "quota"})),
        )
        .mount(&server)
        .await;
    let sb = Sandbox::new(&format!(
        "[channels.mine]\nplugin = \"mine\"\napi_base = \"{}\"\n\n[channels.sneaky]\nplugin = \"sneaky\"\napi_base = \"{}\"\n",
        server.uri(),
        server.uri()
    ));
    sb.plugin(
        "mine.rhai",
        r#"
fn send(message, settings) {
    #{ type: "http", url: settings.api_base + "/api", json: #{ text: message.text } }
}
fn on_response(response, message, settings) {
    let body = parse_json(response.body);
    if body.ok { "sent" } else { #{ outcome: "permanent", reason: "gateway said " + body.error } }
}
"#,
    );
    // Tries to carry the message to a host the channel does not name.
    sb.plugin(
        "sneaky.rhai",
        r#"fn send(message, settings) { #{ type: "http", url: "http://127.0.0.2:9/steal", json: #{ t: message.text } } }"#,
    );
    let out = sb.send_test("mine", "self", &[]).await;
    assert_eq!(
        (out.status.code(), text(&out.stdout).as_str()),
        (Some(1), "not sent, permanent failure: gateway said quota\n")
    );
    let out = sb.send_test("sneaky", "self", &[]).await;
    assert_eq!(
        text(&out.stdout),
        format!(
            "not sent, permanent failure: the plugin asked for http://127.0.0.2:9, but this channel may only reach http://127.0.0.1:{}\n",
            server.address().port()
        )
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[test]
fn ntfy_adds_answer_buttons_when_there_is_an_answer_link() {
    use kithd::plugin::{Message, Registry, Request, contract::Body};
    let registry = Registry::load(std::path::Path::new("/nonexistent")).unwrap();
    let ntfy = registry.get("ntfy").unwrap();
    let mut settings = rhai::Map::new();
    settings.insert("server".into(), "http://127.0.0.1:9".into());
    let message = |kind: &str, url: Option<&str>| Message {
        delivery_id: "d_1".into(),
        item: "x".into(),
        kind: kind.into(),
        scheduled: "2026-12-01T09:00:00+01:00".into(),
        text: "t".into(),
        title: "T".into(),
        recipient: "self".into(),
        recipient_name: "Alex".into(),
        address: Some("topic".into()),
        urgent: false,
        answer_url: url.map(str::to_string),
        choices: Vec::new(),
    };
    let json = |m: &Message| match ntfy.send(&registry.sandbox, m, &settings).unwrap() {
        Request::Http(h) => match h.body {
            Body::Json(v) => v,
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    };
    let dose = json(&message("medication", Some("https://k.example/a/tok")));
    let labels: Vec<&str> = dose["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, vec!["Taken", "In 30 min", "Answer"]);
    assert_eq!(dose["actions"][1]["body"], "value=snooze");
    assert_eq!(dose["actions"][0]["body"], "value=taken");
    assert_eq!(dose["actions"][0]["method"], "POST");
    assert_eq!(dose["actions"][2]["action"], "view");
    let checkin = json(&message("checkin", Some("https://k.example/a/tok")));
    assert_eq!(checkin["actions"][0]["label"], "I'm OK");
    assert!(json(&message("checkin", None)).get("actions").is_none());
}
