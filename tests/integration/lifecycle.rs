//! Guarantees across a process's life, through the real binary: SIGINT stops like SIGTERM,
//! a shutdown grace that runs out abandons what is in flight and the next start sends it,
//! a retry scheduled before a restart happens after it, and a secret never reaches the
//! daemon's own log, even at debug level and even when a gateway echoes it back; consent
//! withdrawn while a delivery to that contact waits cancels it.

use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon::{
    Daemon, bodies, cron_in, gateway_whose_first_answers_are, plan, project, signal, wait_for,
    webhook,
};

#[tokio::test(flavor = "multi_thread")]
async fn sigint_stops_like_sigterm() {
    let (_, cron) = cron_in(3600);
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", "http://127.0.0.1:9/never", ""),
        &format!("[[checkin]]\nid = \"later\"\ncron = \"{cron}\"\nmessage = \"x\"\n"),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    signal(d.pid(), "INT");
    let (code, logs) = d.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("Stopping. in_flight=0") && logs.contains("Stopped."),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_shutdown_grace_that_runs_out_leaves_the_delivery_to_the_next_start() {
    // The first request hangs past the 5 s grace the test daemon has; later ones answer.
    let server = gateway_whose_first_answers_are(
        1,
        ResponseTemplate::new(200).set_delay(Duration::from_secs(20)),
    )
    .await;
    let (_, cron) = cron_in(2);
    // The request may take longer than the grace (the test daemon's is 5 s).
    let channel = format!(
        "[channels.hook]\nplugin = \"webhook\"\nurl = \"{}/slow\"\ntimeout = \"30s\"\n",
        server.uri()
    );
    let dir = project(&plan(
        &["hook"],
        &channel,
        &format!("[[checkin]]\nid = \"slow\"\ncron = \"{cron}\"\nmessage = \"x\"\n"),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    let first = wait_for(&server, "/slow", 1, Duration::from_secs(8)).await;
    assert_eq!(first.len(), 1, "{}", d.logs());
    let (code, took, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("Deliveries still in flight at shutdown") && !logs.contains("Delivered."),
        "{logs}"
    );
    assert!(
        took >= Duration::from_secs(5),
        "left before the grace ran out: {took:?}"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The next start sends it again, under the same id, and records it sent.
    let d = Daemon::start(dir.path(), &[]);
    let all = wait_for(&server, "/slow", 2, Duration::from_secs(10)).await;
    assert_eq!(all.len(), 2, "{}", d.logs());
    assert_eq!(all[0]["delivery_id"], all[1]["delivery_id"]);
    d.wait_log("Delivered.", Duration::from_secs(5));
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retry_scheduled_before_a_restart_happens_after_it() {
    let server = gateway_whose_first_answers_are(1, ResponseTemplate::new(503)).await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan(
        &["hook"],
        // The retry waits 4 s ± 20 %: long enough to stop and start in between.
        &webhook(
            "hook",
            &format!("{}/flaky", server.uri()),
            "retry_base = \"4s\"",
        ),
        &format!("[[checkin]]\nid = \"flaky\"\ncron = \"{cron}\"\nmessage = \"x\"\n"),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Delivery failed; will retry.", Duration::from_secs(10));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert_eq!(
        bodies(&server, "/flaky").await.len(),
        1,
        "retried before the stop: {logs}"
    );
    let d = Daemon::start(dir.path(), &[]);
    let all = wait_for(&server, "/flaky", 2, Duration::from_secs(10)).await;
    assert_eq!(
        all.len(),
        2,
        "the retry was lost across the restart: {}",
        d.logs()
    );
    assert_eq!(all[0]["delivery_id"], all[1]["delivery_id"]);
    d.wait_log("Delivered.", Duration::from_secs(5));
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_never_reaches_the_daemons_log() {
    const SECRET: &str = "kithd-test-secret-4f1c9a7e2b";
    let server = MockServer::start().await;
    // A gateway that echoes the secret back as its error code (which kithd does log).
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(serde_json::json!({ "code": SECRET })),
        )
        .mount(&server)
        .await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan(
        &["hook"],
        &webhook(
            "hook",
            &format!("{}/echo", server.uri()),
            "signing_secret = { secret = \"hook_key\" }\nheaders = { Authorization = \"Bearer token\" }",
        ),
        &format!("[[checkin]]\nid = \"echo\"\ncron = \"{cron}\"\nmessage = \"x\"\n"),
    ));
    let d = Daemon::start(
        dir.path(),
        &[("KITHD_SECRET_HOOK_KEY", SECRET), ("RUST_LOG", "debug")],
    );
    d.wait_log("dead-lettered", Duration::from_secs(15));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert_eq!(bodies(&server, "/echo").await.len(), 1);
    assert!(!logs.contains(SECRET), "the secret is in the log:\n{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn consent_withdrawn_while_a_delivery_waits_cancels_it() {
    let me = crate::daemon::receiver().await;
    // Sam's gateway fails the first time, so Sam's message waits for its retry (4 s).
    let sam = gateway_whose_first_answers_are(1, ResponseTemplate::new(503)).await;
    let (_, cron) = cron_in(2);
    let plan_text = |consent: &str, to: &str| {
        format!(
            "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n\
             [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\n{consent}\n\n{}{}\n\
             [[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nto = [{to}]\nmessage = \"Thinking of you\"\n",
            webhook("me", &format!("{}/me", me.uri()), ""),
            webhook("sam", &format!("{}/sam", sam.uri()), "retry_base = \"4s\""),
        )
    };
    let dir = project(&plan_text("consent = 2026-11-01", "\"self\", \"sam\""));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Delivery failed; will retry.", Duration::from_secs(10));
    // Sam withdraws: the plan no longer has their consent (nor messages them).
    std::fs::write(dir.path().join("plan.toml"), plan_text("", "\"self\"")).unwrap();
    d.hup();
    d.wait_log("Plan reloaded.", Duration::from_secs(5));
    // At the retry, the waiting delivery is cancelled instead of sent.
    d.wait_log(
        "Delivery cancelled: the contact has no consent in the plan.",
        Duration::from_secs(15),
    );
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert_eq!(
        bodies(&sam, "/sam").await.len(),
        1,
        "Sam got a message after withdrawing: {logs}"
    );
    assert_eq!(bodies(&me, "/me").await.len(), 1);
}
