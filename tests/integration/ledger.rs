//! The delivery ledger with the real binary and real receivers: kill -9 with deliveries in
//! flight loses nothing; a failing receiver is retried with backoff visible in `status`;
//! 4xx falls back to the next channel and all-failed is dead-lettered; downtime catch-up
//! under each policy; a corrupt, unwritable or locked ledger stops kithd with a clear error.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon::{Daemon, cron_in, gateway_whose_first_answers_are, plan, project, webhook};
use crate::support::{kithd, text};

async fn ids(server: &MockServer) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter_map(|r| {
            r.headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_with_1000_deliveries_in_flight_loses_none() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(700)))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(3);
    let mut items = String::new();
    for i in 0..1000 {
        items.push_str(&format!(
            "[[checkin]]\nid = \"c{i}\"\ncron = \"{cron}\"\nmessage = \"x\"\n"
        ));
    }
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/k", server.uri()), "concurrency = 200"),
        &items,
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(20));
    // Kill once some deliveries have reached the receiver, with many more in flight.
    let t = std::time::Instant::now();
    while ids(&server).await.len() < 300 {
        assert!(t.elapsed() < Duration::from_secs(30), "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    d.kill9();
    let db = rusqlite::Connection::open(dir.path().join("state/kithd.db")).unwrap();
    let (sent, unconfirmed): (i64, i64) = db
        .query_row(
            "SELECT SUM(state = 'sent'), SUM(state = 'pending') FROM deliveries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    drop(db);
    assert_eq!(
        sent + unconfirmed,
        1000,
        "every firing was recorded before dispatch"
    );
    let received_before_restart = ids(&server).await.len() as i64;
    let in_flight_at_kill = received_before_restart - sent;
    assert!(
        unconfirmed > 0 && in_flight_at_kill > 0,
        "the kill came too late to test anything"
    );

    let d = Daemon::start(dir.path(), &[]);
    let t = std::time::Instant::now();
    loop {
        let got = ids(&server).await;
        let unique: std::collections::HashSet<_> = got.iter().collect();
        if unique.len() == 1000 {
            let duplicates = got.len() - unique.len();
            assert!(
                duplicates as i64 <= in_flight_at_kill,
                "{duplicates} duplicates but only {in_flight_at_kill} were in flight at the kill"
            );
            eprintln!(
                "kill -9: {sent} confirmed, {in_flight_at_kill} in flight, {unconfirmed} unconfirmed; {duplicates} duplicates after restart"
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "only {} of 1000 arrived:\n{}",
            unique.len(),
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        d.logs()
            .contains("Deliveries were in flight when kithd last stopped; sending them again.")
    );
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_receiver_is_retried_with_backoff_until_it_recovers() {
    let server = gateway_whose_first_answers_are(3, ResponseTemplate::new(500)).await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan(
        &["hook"],
        &webhook(
            "hook",
            &format!("{}/r", server.uri()),
            "retry_base = \"2s\"",
        ),
        &format!(
            "[[medication]]\nid = \"dose\"\nname = \"x\"\ncron = \"{cron}\"\nmessage = \"x\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Delivery failed; will retry.", Duration::from_secs(10));
    let status = text(&kithd(dir.path(), &["status", "--state-dir", "state"]).stdout);
    assert!(status.contains("Pending or retrying (1):"), "{status}");
    assert!(status.contains("attempt 1 failed: HTTP 500"), "{status}");
    let errors = status
        .split("Last error per channel:\n")
        .nth(1)
        .unwrap_or("");
    assert!(
        errors
            .lines()
            .any(|l| l.starts_with("  hook  ") && l.ends_with("  HTTP 500")),
        "{status}"
    );
    d.wait_log("Delivered.", Duration::from_secs(30));
    let history = text(&kithd(dir.path(), &["history", "--state-dir", "state"]).stdout);
    assert!(
        history.contains("dose             (dose reminder) → self via hook  sent, 4 attempts"),
        "{history}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 4);
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    // Three failed attempts, each with its next attempt logged.
    let retries = logs
        .lines()
        .filter(|l| l.contains("will retry") && l.contains("next_attempt="))
        .count();
    assert_eq!(retries, 3, "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn permanent_failure_falls_back_and_all_failing_is_dead_lettered() {
    let server = MockServer::start().await;
    Mock::given(path("/bad"))
        .respond_with(ResponseTemplate::new(400))
        .mount(&server)
        .await;
    Mock::given(path("/bad2"))
        .respond_with(ResponseTemplate::new(403))
        .mount(&server)
        .await;
    Mock::given(path("/good"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(2);
    let channels = [
        webhook("bad", &format!("{}/bad", server.uri()), ""),
        webhook("bad2", &format!("{}/bad2", server.uri()), ""),
        webhook("good", &format!("{}/good", server.uri()), ""),
    ]
    .concat();
    let plan_text = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"bad\", \"good\"]\n\n[contacts.sam]\nname = \"Sam\"\nreach = [\"bad\", \"bad2\"]\nconsent = 2026-11-01\n\n{channels}\n[[checkin]]\nid = \"ping\"\ncron = \"{cron}\"\nto = [\"self\", \"sam\"]\nmessage = \"x\"\n"
    );
    let dir = project(&plan_text);
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("dead-lettered", Duration::from_secs(10));
    d.wait_log("Delivered.", Duration::from_secs(10));
    let history = text(
        &kithd(
            dir.path(),
            &["history", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    );
    let rows: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let by: HashMap<(String, String), String> = rows
        .iter()
        .map(|r| {
            (
                (
                    r["recipient"].as_str().unwrap().into(),
                    r["channel"].as_str().unwrap().into(),
                ),
                r["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(by[&("self".into(), "bad".into())], "failed");
    assert_eq!(by[&("self".into(), "good".into())], "sent");
    assert_eq!(by[&("sam".into(), "bad".into())], "failed");
    assert_eq!(by[&("sam".into(), "bad2".into())], "dead");
    let status = text(&kithd(dir.path(), &["status", "--state-dir", "state"]).stdout);
    assert!(status.contains("Dead letters (1):"), "{status}");
    assert!(status.contains("ping (checkin) → sam via bad2"), "{status}");
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    assert!(
        logs.contains("ERROR") && logs.contains("Delivery failed on every channel; dead-lettered."),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn downtime_catch_up_follows_each_policy() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let mut items = String::new();
    for (id, policy) in [
        ("always", "always"),
        ("skip", "skip"),
        ("two-hours", "2h"),
        ("ten-min", "10m"),
    ] {
        items.push_str(&format!(
            "[[medication]]\nid = \"{id}\"\nname = \"x\"\nat = [\"09:00\", \"10:00\", \"11:00\", \"12:00\"]\ncatch_up = \"{policy}\"\nmessage = \"Dose ({{time}}).\"\n"
        ));
    }
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/c", server.uri()), ""),
        &items,
    ));
    // First run: the 09:00 firings happen, which gives each item a cursor.
    let d = Daemon::start_with(dir.path(), &[], Some("2027-01-01 08:59:57"));
    let t = std::time::Instant::now();
    while server.received_requests().await.unwrap().len() < 4 {
        assert!(t.elapsed() < Duration::from_secs(15), "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.stop().0, Some(0));
    server.reset().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    // kithd is down from 09:00 until 12:30: 10:00, 11:00 and 12:00 are missed.
    let d = Daemon::start_with(dir.path(), &[], Some("2027-01-01 12:30:00"));
    d.wait_log(
        "Caught up on firings missed while kithd was not running. delivered_late=2 missed=10",
        Duration::from_secs(10),
    );
    let t = std::time::Instant::now();
    while server.received_requests().await.unwrap().len() < 2 {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Stopped before looking: whatever the daemon had claimed has finished by then.
    assert_eq!(d.stop().0, Some(0));
    let got: Vec<Value> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let mut items: Vec<(&str, &str)> = got
        .iter()
        .map(|b| (b["item"].as_str().unwrap(), b["text"].as_str().unwrap()))
        .collect();
    items.sort();
    assert_eq!(
        items,
        vec![
            ("always", "(Late: this was due at 12:00.) Dose (12:00)."),
            ("two-hours", "(Late: this was due at 12:00.) Dose (12:00)."),
        ]
    );
    let history = text(
        &kithd(
            dir.path(),
            &[
                "history",
                "--state-dir",
                "state",
                "--since",
                "2027-01-01T09:30",
            ],
        )
        .stdout,
    );
    let missed = |item: &str| {
        history
            .lines()
            .filter(|l| {
                l.contains(&format!(" {item} ")) && l.ends_with("missed (kithd was not running)")
            })
            .count()
    };
    assert_eq!(
        (
            missed("always"),
            missed("skip"),
            missed("two-hours"),
            missed("ten-min")
        ),
        (2, 3, 2, 3),
        "{history}"
    );
    assert!(history.contains("[late]"), "{history}");
}

#[test]
fn a_corrupt_unwritable_or_locked_ledger_is_a_clear_error() {
    let p = plan(
        &["console"],
        "[channels.console]\nplugin = \"console\"\n",
        "[[checkin]]\nid = \"a\"\nat = \"09:00\"\nmessage = \"x\"\n",
    );
    // Corrupt.
    let dir = project(&p);
    std::fs::create_dir(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/kithd.db"), vec![7u8; 4096]).unwrap();
    let (code, logs) = Daemon::start(dir.path(), &[]).wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(74), "{logs}");
    assert!(
        logs.contains("is damaged") && logs.contains("not starting"),
        "{logs}"
    );
    // Unwritable: the state directory can't be created (a file is in the way).
    let dir = project(&p);
    std::fs::write(dir.path().join("state"), "not a directory").unwrap();
    let (code, logs) = Daemon::start(dir.path(), &[]).wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(73), "{logs}");
    assert!(logs.contains("can't create the state directory"), "{logs}");
    // Locked: a second daemon on the same state directory.
    let dir = project(&p);
    let first = Daemon::start(dir.path(), &[]);
    first.wait_log("Ready.", Duration::from_secs(10));
    let (code, logs) = Daemon::start(dir.path(), &[]).wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(69), "{logs}");
    assert!(
        logs.contains("another kithd is already running with state directory"),
        "{logs}"
    );
    assert_eq!(first.stop().0, Some(0));
}
