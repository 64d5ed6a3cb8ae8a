//! Plugins beyond their own channel, through the real binary: a script can't reach another
//! channel's secrets or kithd's own keys, can't put a secret in a URL's authority, can't
//! reach another port or a host its defaults name, and a gateway that echoes the message
//! can't put it into the journal or the ledger.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::builder::{Cmd, Project};
use crate::daemon::{Daemon, cron_in, project, wait_for};
use crate::support::text;

const ANSWER_KEY: &str = "k3y-for-signing-answer-links-0123456789";
const OTHER: &str = "other-channels-webhook-secret";
const MINE: &str = "mine-own-token";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("KITHD_SECRET_ANSWER_KEY", ANSWER_KEY),
        ("KITHD_SECRET_OTHER_KEY", OTHER),
        ("KITHD_SECRET_MINE_TOKEN", MINE),
    ]
}

fn kithd(dir: &Path, args: &[&str]) -> Output {
    Cmd::new(dir, args).envs(&env()).output()
}

fn send_test(dir: &Path) -> (Option<i32>, String) {
    let out = kithd(
        dir,
        &[
            "send-test",
            "plan.toml",
            "--plugins",
            "plugins",
            "--channel",
            "mine",
            "--to",
            "self",
            "--message",
            "Take 50 mg sertraline now",
        ],
    );
    (
        out.status.code(),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

/// A plan whose person is reached through the custom plugin `mine`, and a friend through a
/// signed webhook; `mine_settings` are the extra settings of `mine`.
fn setup(mine_settings: &str, plugin: &str, other_url: &str) -> Project {
    let dir = project(&format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"mine\"]\n\n[contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nconsent = 2026-11-02\nreach = [\"other\"]\n\n[server]\npublic_url = \"https://kithd.example.org\"\n\n[channels.mine]\nplugin = \"mine\"\ntoken = {{ secret = \"mine_token\" }}\n{mine_settings}\n\n[channels.other]\nplugin = \"webhook\"\nurl = \"{other_url}\"\nsigning_secret = {{ secret = \"other_key\" }}\n"
    ));
    dir.file("plugins/mine.rhai", plugin);
    dir
}

/// `send` that behaves for kithd's dry run and misbehaves with `bad` on real messages.
fn two_faced(bad: &str) -> String {
    format!(
        "fn send(m, s) {{\n    if m.text.contains(\"dry run\") {{ return #{{ type: \"http\", method: \"POST\", url: s.url, json: #{{}} }}; }}\n    {bad}\n}}\n"
    )
}

async fn sink() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

fn no_secret_in(out: &str) {
    for s in [ANSWER_KEY, OTHER, MINE] {
        assert!(!out.contains(s), "a secret value in the output: {out}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_can_use_only_its_own_channels_secrets() {
    let server = sink().await;
    for stolen in ["answer_key", "other_key", "inbound_token"] {
        let dir = setup(
            &format!("url = \"{}/mine\"", server.uri()),
            &two_faced(&format!(
                "#{{ type: \"http\", method: \"POST\", url: s.url, headers: #{{ \"X-Steal\": secret(\"{stolen}\") }}, json: #{{}} }}"
            )),
            &format!("{}/other", server.uri()),
        );
        let (code, out) = send_test(dir.path());
        assert_eq!(code, Some(1), "{stolen}: {out}");
        assert!(
            out.contains(&format!(
                "the plugin used secret `{stolen}`, which this channel's settings don't name"
            )),
            "{out}"
        );
        no_secret_in(&out);
    }
    // Its own secret, in a header, works.
    let dir = setup(
        &format!("url = \"{}/mine\"", server.uri()),
        &two_faced("#{ type: \"http\", method: \"POST\", url: s.url, bearer: s.token, json: #{} }"),
        &format!("{}/other", server.uri()),
    );
    let (code, out) = send_test(dir.path());
    assert_eq!(code, Some(0), "{out}");
    let got = server.received_requests().await.unwrap();
    assert_eq!(got.len(), 1, "only the legitimate request arrived");
    for r in &got {
        for (_, v) in r.headers.iter() {
            let v = v.to_str().unwrap_or_default();
            assert!(!v.contains(ANSWER_KEY) && !v.contains(OTHER), "{v}");
        }
    }
    // A channel may not even name kithd's own keys.
    let dir = setup(
        "url = \"https://hooks.example.org/x\"\nkey = { secret = \"answer_key\" }",
        &two_faced("()"),
        "https://hooks.example.org/y",
    );
    let out = kithd(dir.path(), &["check", "plan.toml", "--plugins", "plugins"]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        text(&out.stderr).contains("`answer_key` is kithd's own secret; a channel can't use it"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_stay_out_of_the_url_authority_and_of_every_message() {
    // The dry run already catches a secret host...
    let dir = setup(
        "url = \"https://hooks.example.org/x\"",
        "fn send(m, s) { #{ type: \"http\", method: \"POST\", url: \"https://\" + s.token + \"/x\", json: #{} } }",
        "https://hooks.example.org/y",
    );
    let out = kithd(dir.path(), &["check", "plan.toml", "--plugins", "plugins"]);
    assert_eq!(out.status.code(), Some(65));
    let err = text(&out.stderr);
    assert!(
        err.contains("a secret may not be placed in the request URL's scheme, host or port"),
        "{err}"
    );
    no_secret_in(&err);
    // ...and the host refuses it on a real message, before resolving anything.
    let dir = setup(
        "url = \"https://hooks.example.org/x\"",
        &two_faced(
            "#{ type: \"http\", method: \"POST\", url: \"http://\" + s.token + \"/x\", json: #{} }",
        ),
        "https://hooks.example.org/y",
    );
    let (code, out) = send_test(dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("scheme, host or port"), "{out}");
    no_secret_in(&out);
    // A channel's `url` can't itself be a secret: it decides where requests go.
    let dir = setup(
        "url = { secret = \"mine_token\" }",
        &two_faced("()"),
        "https://hooks.example.org/y",
    );
    let out = kithd(dir.path(), &["check", "plan.toml", "--plugins", "plugins"]);
    assert_eq!(out.status.code(), Some(65));
    assert!(
        text(&out.stderr).contains("can't be a secret"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_origin_is_scheme_host_and_port_from_the_plan() {
    let allowed = sink().await;
    let elsewhere = sink().await;
    // Another port on the same host.
    let dir = setup(
        &format!("url = \"{}/mine\"", allowed.uri()),
        &two_faced(&format!(
            "#{{ type: \"http\", method: \"POST\", url: \"{}/x\", json: #{{}} }}",
            elsewhere.uri()
        )),
        &format!("{}/other", allowed.uri()),
    );
    let (code, out) = send_test(dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("but this channel may only reach http://127.0.0.1:"),
        "{out}"
    );
    // A plugin default naming another origin can't widen the plan's.
    let dir = setup(
        &format!("api_base = \"{}\"", allowed.uri()),
        &format!(
            "fn defaults() {{ #{{ url: \"{}/x\" }} }}\n{}",
            elsewhere.uri(),
            two_faced("#{ type: \"http\", method: \"POST\", url: s.url, json: #{} }").replace(
                "url: s.url, json: #{} }; }",
                "url: s.api_base, json: #{} }; }"
            )
        ),
        &format!("{}/other", allowed.uri()),
    );
    let (code, out) = send_test(dir.path());
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("may only reach"), "{out}");
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "a request reached the other port"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_echoing_the_message_stays_out_of_the_journal_and_the_ledger() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string(
            "{\"code\": 21211, \"message\": \"Invalid To number for: Take 50 mg sertraline now, Alex\"}",
        ))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(2);
    let dir = project(&format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"hook\", \"echo\"]\n\n[channels.hook]\nplugin = \"webhook\"\nurl = \"{uri}/hook\"\n\n[channels.echo]\nplugin = \"echo\"\nurl = \"{uri}/echo\"\n\n[[medication]]\nid = \"dose\"\nname = \"sertraline\"\ncron = \"{cron}\"\nmessage = \"Take 50 mg sertraline now, Alex\"\n",
        uri = server.uri()
    ));
    // A plugin whose `on_response` hands the gateway's body back as its reason.
    std::fs::write(
        dir.path().join("plugins/echo.rhai"),
        "fn send(m, s) { #{ type: \"http\", method: \"POST\", url: s.url, json: #{ text: m.text } } }\nfn on_response(r, m, s) { #{ outcome: \"permanent\", reason: r.body } }\n",
    )
    .unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    assert_eq!(
        wait_for(&server, "/echo", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    d.wait_log("dead-lettered", Duration::from_secs(5));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    assert!(logs.contains("HTTP 400 (gateway code 21211)"), "{logs}");
    assert!(
        logs.contains("reason withheld: it repeated the message text"),
        "{logs}"
    );
    let history = kithd(
        dir.path(),
        &["history", "--state-dir", "state", "--format", "json"],
    );
    let status = kithd(dir.path(), &["status", "--state-dir", "state"]);
    for out in [logs, text(&history.stdout), text(&status.stdout)] {
        assert!(!out.contains("sertraline now"), "health text leaked: {out}");
    }
}
