//! SMS replies through real gateways' webhooks, with the real binary: requests signed by
//! Twilio's and Vonage's own Python SDKs (installed in a virtualenv by
//! `scripts/gateway-venv.sh`) are posted to `/inbound/{channel}`. A genuine reply answers;
//! a forged, changed or re-addressed one is refused and records nothing; a repeat is
//! acknowledged and records nothing; a contact's reply is not the person's answer; a text
//! that isn't understood gets the choices back; `send-test --inbound` replays a capture.

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::daemon::{Daemon, cron_in, project, receiver};
use crate::support::{root, text};

const PUBLIC: &str = "https://kithd.example.org";
const TWILIO_TOKEN: &str = "twilio-auth-token-for-the-replies-test";
const VONAGE_SIG: &str = "vonage-signature-secret-for-the-test";
const PERSON: &str = "+4915100000001";
const SAM: &str = "+4915100000002";

/// The virtualenv's Python, with the gateways' SDKs (made once per test run).
fn python() -> &'static str {
    static PY: OnceLock<String> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new(root().join("scripts/gateway-venv.sh"))
            .output()
            .expect("scripts/gateway-venv.sh runs");
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    })
}

fn sdk(args: &[&str]) -> String {
    let out = Command::new(python())
        .arg(root().join("tests/peers/sign_gateway.py"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Twilio's signature for a POST of `params` to `url`, by the twilio SDK.
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = params
        .iter()
        .map(|(k, v)| (k.to_string(), (*v).into()))
        .collect();
    sdk(&[
        "twilio",
        token,
        url,
        &serde_json::Value::Object(map).to_string(),
    ])
}

/// `params` with Vonage's `timestamp` and `sig` (HMAC-`method`), by the vonage SDK.
fn vonage_signed(secret: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&sdk(&["vonage", secret, method, &params.to_string()])).unwrap()
}

fn plan_text(twilio: &str, vonage: &str, cron: &str) -> String {
    format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"{PERSON}\"\nreach = [\"sms\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nphone = \"{SAM}\"\nreach = [\"sms\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n\
         [channels.sms]\nplugin = \"twilio\"\napi_base = \"{twilio}\"\naccount_sid = \"AC123\"\nauth_token = {{ secret = \"twilio_token\" }}\nfrom = \"+15550000000\"\n\n\
         [channels.vsms]\nplugin = \"vonage\"\napi_base = \"{vonage}\"\napi_key = \"key\"\napi_secret = {{ secret = \"vonage_secret\" }}\nfrom = \"kithd\"\nsignature_secret = {{ secret = \"vonage_sig\" }}\nsignature_method = \"md5\"\n\n\
         [channels.vopen]\nplugin = \"vonage\"\napi_base = \"{vonage}\"\napi_key = \"key\"\napi_secret = {{ secret = \"vonage_secret\" }}\nfrom = \"kithd\"\n\n\
         [[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nmessage = \"How are you? Reply OK or 1-5.\"\n\n\
         [[medication]]\nid = \"meds\"\nname = \"x\"\ncron = \"{cron}\"\nmessage = \"Dose? Reply TAKEN.\"\n\n\
         [[medication]]\nid = \"meds2\"\nname = \"y\"\ncron = \"{cron}\"\nmessage = \"Second dose? Reply TAKEN.\"\n"
    )
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            "KITHD_SECRET_ANSWER_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        ),
        ("KITHD_SECRET_TWILIO_TOKEN", TWILIO_TOKEN),
        ("KITHD_SECRET_VONAGE_SECRET", "vonage-api-secret"),
        ("KITHD_SECRET_VONAGE_SIG", VONAGE_SIG),
    ]
}

/// A Vonage SMS API that accepts every message.
async fn vonage_api() -> wiremock::MockServer {
    use wiremock::{Mock, ResponseTemplate, matchers::path};
    let server = wiremock::MockServer::start().await;
    Mock::given(path("/sms/json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "message-count": "1",
            "messages": [{"status": "0", "message-id": "V1"}]
        })))
        .mount(&server)
        .await;
    server
}

fn history(dir: &std::path::Path) -> String {
    text(&crate::support::kithd(dir, &["history", "--state-dir", "state"]).stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_replies_are_verified_matched_and_taken_once() {
    let (twilio, vonage) = (receiver().await, vonage_api().await);
    let (_, cron) = cron_in(2);
    let dir = project(&plan_text(&twilio.uri(), &vonage.uri(), &cron));
    // Unsigned Vonage replies are open to anyone who knows the URL, and check says so.
    dir.kithd(&["check", "plan.toml"])
        .envs(&env())
        .stderr_has("channel `vopen` takes replies at `/inbound/vopen`")
        .stderr_has("anyone who knows the URL")
        .run();
    let d = Daemon::start(dir.path(), &env());
    let sent = crate::daemon::wait_for_requests(
        &twilio,
        "/2010-04-01/Accounts/AC123/Messages.json",
        3,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(sent, 3, "{}", d.logs());
    let base = d.answer_base();
    let http = reqwest::Client::new();
    let twilio_post = |url_signed: String,
                       token: &str,
                       signed: Vec<(&str, String)>,
                       sent: Vec<(&str, String)>| {
        let sp: Vec<(&str, &str)> = signed.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let sig = twilio_signature(token, &url_signed, &sp);
        http.post(format!("{base}/inbound/sms"))
            .header("x-twilio-signature", sig)
            .form(&sent)
            .send()
    };
    let params = |from: &str, body: &str, sid: &str| {
        vec![
            ("From", from.to_string()),
            ("To", "+15550000000".to_string()),
            ("Body", body.to_string()),
            ("MessageSid", sid.to_string()),
            ("AccountSid", "AC123".to_string()),
        ]
    };
    let url = format!("{PUBLIC}/inbound/sms");

    // Refused, recording nothing: a wrong key, a changed parameter, another URL.
    for (signed_url, token, signed, sent) in [
        (
            url.clone(),
            "not-the-token",
            params(PERSON, "OK", "SM1"),
            params(PERSON, "OK", "SM1"),
        ),
        (
            url.clone(),
            TWILIO_TOKEN,
            params(PERSON, "5", "SM2"),
            params(PERSON, "1", "SM2"),
        ),
        (
            format!("{PUBLIC}/inbound/other"),
            TWILIO_TOKEN,
            params(PERSON, "OK", "SM3"),
            params(PERSON, "OK", "SM3"),
        ),
    ] {
        let r = twilio_post(signed_url, token, signed, sent).await.unwrap();
        assert_eq!(r.status(), 403);
    }
    let r = http
        .post(format!("{base}/inbound/sms"))
        .form(&params(PERSON, "OK", "SM4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "no signature at all");

    // A contact's genuine reply is not the person's answer.
    let r = twilio_post(
        url.clone(),
        TWILIO_TOKEN,
        params(SAM, "OK", "SM5"),
        params(SAM, "OK", "SM5"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    d.wait_log(
        "A contact's reply was not taken as the person's answer.",
        Duration::from_secs(5),
    );
    // A stranger's is ignored, with the number redacted in the log.
    let r = twilio_post(
        url.clone(),
        TWILIO_TOKEN,
        params("+4917699999987", "OK", "SM6"),
        params("+4917699999987", "OK", "SM6"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    d.wait_log(
        "A reply from an unknown sender was ignored.",
        Duration::from_secs(5),
    );
    assert!(
        !d.logs().contains("4917699999987") && d.logs().contains("…87"),
        "{}",
        d.logs()
    );
    assert!(
        !history(dir.path()).contains("answered"),
        "{}",
        history(dir.path())
    );

    // Not understood (a long, non-ASCII text): Twilio is answered with the choices as TwiML.
    let long = "Mir geht es heute ähnlich wie gestern … ".repeat(400);
    assert!(long.len() > 16 * 1024);
    let r = twilio_post(
        url.clone(),
        TWILIO_TOKEN,
        params(PERSON, &long, "SM7"),
        params(PERSON, &long, "SM7"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/xml");
    let twiml = r.text().await.unwrap();
    assert!(
        twiml.contains("<Response><Message>kithd didn&apos;t understand that.")
            && twiml.contains("TAKEN or SKIPPED"),
        "{twiml}"
    );

    // Past 64 KiB the request is refused before any plugin runs.
    let r = http
        .post(format!("{base}/inbound/sms"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("Body={}", "x".repeat(65 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // The person's genuine "ok!" answers the check-in; Twilio gets an empty TwiML response.
    let r = twilio_post(
        url.clone(),
        TWILIO_TOKEN,
        params(PERSON, " ok! ", "SM8"),
        params(PERSON, " ok! ", "SM8"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().ends_with("<Response/>"));
    d.wait_log("Answer recorded.", Duration::from_secs(5));
    // The same request again (a gateway retry, or a replay) is acknowledged, records nothing.
    let r = twilio_post(
        url.clone(),
        TWILIO_TOKEN,
        params(PERSON, " ok! ", "SM8"),
        params(PERSON, " ok! ", "SM8"),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    d.wait_log(
        "A repeated gateway message was acknowledged and not recorded.",
        Duration::from_secs(5),
    );

    // Vonage, signed with HMAC-MD5 by its SDK: "TAKEN" answers a dose. Unsigned or forged
    // requests to the signed channel are refused.
    // A reply the gateway received before the doses were sent answers nothing.
    let stale = vonage_signed(
        VONAGE_SIG,
        "md5",
        serde_json::json!({
            "msisdn": PERSON.trim_start_matches('+'), "to": "kithd", "messageId": "V-99",
            "text": "TAKEN", "type": "text",
            "message-timestamp": (chrono::Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%d %H:%M:%S").to_string(),
        }),
    );
    let r = http
        .post(format!("{base}/inbound/vsms"))
        .json(&stale)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    d.wait_log(
        "A reply came with nothing open to answer.",
        Duration::from_secs(5),
    );
    let v = vonage_signed(
        VONAGE_SIG,
        "md5",
        serde_json::json!({
            "msisdn": PERSON.trim_start_matches('+'), "to": "kithd", "messageId": "V-100",
            "text": "Taken.", "type": "text", "message-timestamp": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        }),
    );
    let mut forged = v.clone();
    forged["text"] = "skipped".into();
    let mut unsigned = v.clone();
    unsigned.as_object_mut().unwrap().remove("sig");
    for bad in [&forged, &unsigned] {
        let r = http
            .post(format!("{base}/inbound/vsms"))
            .json(bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{bad}");
    }
    let r = http
        .post(format!("{base}/inbound/vsms"))
        .json(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unsigned Vonage replies are taken where no `signature_secret` is set (a GET here, as
    // Vonage may send): "skipped" answers the other dose.
    let vonage_get = |id: &'static str, text: &'static str| {
        http.get(format!("{base}/inbound/vopen"))
            .query(&[
                ("msisdn", "4915100000001"),
                ("to", "kithd"),
                ("messageId", id),
                ("text", text),
                ("type", "text"),
            ])
            .send()
    };
    assert_eq!(vonage_get("V-101", "SKIPPED").await.unwrap().status(), 200);
    // A text it doesn't understand gets the choices back through Vonage's SMS API, once.
    for id in ["V-102", "V-103"] {
        assert_eq!(vonage_get(id, "what is this").await.unwrap().status(), 200);
    }
    d.wait_log("the choices were sent lately", Duration::from_secs(5));
    assert_eq!(
        crate::daemon::wait_for_requests(&vonage, "/sms/json", 1, Duration::from_secs(5)).await,
        1,
        "{}",
        d.logs()
    );
    let reply = &vonage.received_requests().await.unwrap()[0];
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&reply.body)
        .into_owned()
        .collect();
    assert!(
        form.contains(&("to".into(), "4915100000001".into())),
        "{form:?}"
    );
    assert!(
        form.iter()
            .any(|(k, v)| k == "text" && v.contains("TAKEN or SKIPPED")),
        "{form:?}"
    );

    let h = history(dir.path());
    assert_eq!(h.matches("; answered").count(), 3, "{h}");
    for want in ["; answered ok", "; answered taken", "; answered skipped"] {
        assert!(h.contains(want), "{want} in\n{h}");
    }
    let logs = d.logs();
    assert!(
        !logs.contains("ähnlich") && !logs.contains(TWILIO_TOKEN) && !logs.contains(VONAGE_SIG),
        "{logs}"
    );
    d.stop();

    // send-test --inbound replays a captured request offline, and says what it read.
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params(PERSON, "3", "SM9"))
        .finish();
    let sig = twilio_signature(
        TWILIO_TOKEN,
        &url,
        &params(PERSON, "3", "SM9")
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<Vec<_>>(),
    );
    let capture = format!(
        "POST /inbound/sms HTTP/1.1\r\nHost: kithd.example.org\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {sig}\r\n\r\n{body}"
    );
    dir.file("good.http", &capture);
    dir.file("changed.http", &capture.replace("Body=3", "Body=4"));
    dir.kithd(&[
        "send-test",
        "plan.toml",
        "--channel",
        "sms",
        "--inbound",
        "good.http",
    ])
    .envs(&env())
    .stdout_has(&format!("a message from {PERSON} (the person)"))
    .stdout_has("read as: the answer `3`")
    .stdout_has("<Response/>")
    .run();
    dir.kithd(&[
        "send-test",
        "plan.toml",
        "--channel",
        "sms",
        "--inbound",
        "changed.http",
    ])
    .envs(&env())
    .status(1)
    .stdout_has("refused (403)")
    .run();
}

/// A directory of plans behind one answer server: a reply is read by a plan whose channel
/// verifies it (robin's shared Twilio token, or sky's own, `sky/twilio_token` in the
/// credentials directory) and taken by the plan whose person sent it.
#[tokio::test(flavor = "multi_thread")]
async fn gateway_replies_find_their_plan_in_a_directory() {
    const SKY: &str = "+4915100000007";
    const SKY_TOKEN: &str = "sky-has-a-twilio-account-of-their-own";
    let twilio = receiver().await;
    let (_, cron) = cron_in(2);
    let p = crate::builder::Project::empty();
    let plan = |id: &str, phone: &str| {
        format!(
            "[person]\nid = \"{id}\"\nname = \"P\"\ntimezone = \"UTC\"\nphone = \"{phone}\"\nreach = [\"sms\"]\n\n\
             [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nphone = \"{SAM}\"\nreach = [\"sms\"]\nconsent = 2026-11-01\n\n\
             [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n\
             [channels.sms]\nplugin = \"twilio\"\napi_base = \"{}\"\naccount_sid = \"AC123\"\nauth_token = {{ secret = \"twilio_token\" }}\nfrom = \"+15550000000\"\n\n\
             [[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nmessage = \"How are you? Reply 1-5.\"\n",
            twilio.uri()
        )
    };
    p.file("plans/robin.toml", &plan("robin", PERSON));
    p.file("plans/sky.toml", &plan("sky", SKY));
    p.file("creds/sky/twilio_token", SKY_TOKEN);
    let creds = p.path().join("creds");
    let creds = creds.to_str().unwrap();
    let mut env = env();
    env.push(("CREDENTIALS_DIRECTORY", creds));
    let d = Daemon::start_plan(p.path(), "plans", &env);
    let sent = crate::daemon::wait_for_requests(
        &twilio,
        "/2010-04-01/Accounts/AC123/Messages.json",
        2,
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(sent, 2, "{}", d.logs());
    let base = d.answer_base();
    let url = format!("{PUBLIC}/inbound/sms");
    let reply = |token: &str, from: &str, body: &str, sid: &str| {
        let params = [
            ("From", from),
            ("To", "+15550000000"),
            ("Body", body),
            ("MessageSid", sid),
        ];
        let sig = twilio_signature(token, &url, &params);
        reqwest::Client::new()
            .post(format!("{base}/inbound/sms"))
            .header("x-twilio-signature", sig)
            .form(&params)
            .send()
    };
    let answered = |id: &str| p.answered(id, &[]);
    // Sky's reply, signed with sky's own token: robin's channel refuses it, sky's takes it.
    assert_eq!(
        reply(SKY_TOKEN, SKY, "2", "SM1").await.unwrap().status(),
        200
    );
    assert_eq!((answered("robin"), answered("sky")), (0, 1));
    // Robin's, signed with the shared token.
    assert_eq!(
        reply(TWILIO_TOKEN, PERSON, "5", "SM2")
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!((answered("robin"), answered("sky")), (1, 1));
    // Signed with neither: refused.
    let forged = reply("not-a-token-either-plan-has", SKY, "1", "SM3")
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Sam, a contact in both plans, says STOP: recorded in both, answered once.
    let stop = reply(TWILIO_TOKEN, SAM, "STOP", "SM4").await.unwrap();
    assert_eq!(stop.status(), 200);
    assert!(
        stop.text()
            .await
            .unwrap()
            .contains("You will get no more messages from kithd.")
    );
    for id in ["robin", "sky"] {
        p.kithd(&["status", "--state-dir", "state", "--plan", id])
            .stdout_has("Asked to stop: sam (since ")
            .run();
    }
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
}
