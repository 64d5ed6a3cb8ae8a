//! Claims, leases and fencing through the real binary: a backlog that waits for a slot is
//! never claimed twice, a lease that ends mid-send is neither completed by its old owner
//! nor lost, and a slow plugin can't stall another channel.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon::{Daemon, bodies, cron_in, plan, project, signal, wait_for, webhook};
use crate::support::text;

fn ids(bodies: &[serde_json::Value]) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for b in bodies {
        *seen
            .entry(b["delivery_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    seen
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backlog_waiting_for_a_slot_is_sent_once() {
    // 200 doses due at once, one slot, 50 ms a send: the backlog takes 10 s, ten leases
    // of one second. Before claims waited for slots, a quarter of them went out twice.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(50)))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(3);
    let items: String = (0..200)
        .map(|i| {
            format!("[[medication]]\nid = \"dose-{i:03}\"\nname = \"lithium\"\ncron = \"{cron}\"\nmessage = \"Dose {i}\"\n")
        })
        .collect();
    let dir = project(&plan(
        &["hook"],
        &webhook(
            "hook",
            &format!("{}/backlog", server.uri()),
            "concurrency = 1",
        ),
        &items,
    ));
    let d = Daemon::start(dir.path(), &[("KITHD_TEST_LEASE_SECS", "1")]);
    d.wait_log("Ready.", Duration::from_secs(10));
    let got = wait_for(&server, "/backlog", 200, Duration::from_secs(60)).await;
    assert_eq!(got.len(), 200, "{}", d.logs());
    // Stop (draining what is in flight) before counting, so a late duplicate would show.
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    let all = bodies(&server, "/backlog").await;
    let seen = ids(&all);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert_eq!(
        (all.len(), seen.len(), twice.len()),
        (200, 200, 0),
        "{twice:?}"
    );
    assert!(!logs.contains("taken over"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_lease_that_ends_mid_send_is_neither_completed_by_its_old_owner_nor_lost() {
    // The gateway holds each request for 4 s (the channel's timeout is 5 s). While the first is in flight the daemon is
    // stopped (SIGSTOP) for longer than its 2 s lease, so it can't renew it: on waking, the
    // lease has ended, the delivery is claimed anew and sent again, and the first claim's
    // late answer must not be recorded.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/stall"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(4)))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(3);
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/stall", server.uri()), ""),
        &format!(
            "[[medication]]\nid = \"dose\"\nname = \"lithium\"\ncron = \"{cron}\"\nmessage = \"Dose\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &[("KITHD_TEST_LEASE_SECS", "2")]);
    d.wait_log("Ready.", Duration::from_secs(10));
    let first = wait_for(&server, "/stall", 1, Duration::from_secs(10)).await;
    assert_eq!(first.len(), 1, "{}", d.logs());
    signal(d.pid(), "STOP");
    std::thread::sleep(Duration::from_secs(3));
    signal(d.pid(), "CONT");
    d.wait_log("outcome is not recorded", Duration::from_secs(20));
    d.wait_log("Delivered.", Duration::from_secs(20));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("Leases ended before they could be renewed"),
        "{logs}"
    );
    let all = bodies(&server, "/stall").await;
    assert_eq!(all.len(), 2, "sent again under the new claim");
    assert_eq!(ids(&all).len(), 1, "the same delivery both times");
    let out = dir
        .kithd(&["history", "--state-dir", "state", "--format", "json"])
        .status(0)
        .run();
    let history = text(&out.stdout);
    let rows: Vec<serde_json::Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|v: &serde_json::Value| v["item"] == "dose")
        .collect();
    assert_eq!(rows.len(), 1, "{history}");
    assert_eq!(rows[0]["state"], "sent", "{history}");
    assert_eq!(rows[0]["attempts"], 1, "recorded once: {history}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_plugin_does_not_stall_another_channel() {
    // 1,000 messages through a plugin that burns its whole 50 ms deadline on every real
    // message, and a healthy channel with a probe due at each second: the probe keeps time.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    let (start, cron) = cron_in(3);
    let slow: String = (0..1000)
        .map(|i| {
            format!("[[checkin]]\nid = \"slow-{i:04}\"\ncron = \"{cron}\"\nmessage = \"slow\"\nto = [\"self\"]\n")
        })
        .collect();
    let probe_secs: Vec<DateTime<Utc>> = (1..=12)
        .map(|k| start + chrono::Duration::seconds(k))
        .collect();
    let probes: String = probe_secs
        .iter()
        .enumerate()
        .map(|(k, t)| {
            format!(
                "[[followup]]\nid = \"probe-{k:02}\"\nwith = \"sam\"\nto = [\"sam\"]\n{}\nmessage = \"probe\"\n",
                cron_at(*t)
            )
        })
        .collect();
    let plan_text = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"slow\"]\n\n[contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nconsent = 2026-11-02\nreach = [\"probe\"]\n\n[channels.slow]\nplugin = \"burn\"\nurl = \"{uri}/slow\"\n\n{probe}\n{slow}\n{probes}",
        uri = server.uri(),
        probe = webhook("probe", &format!("{}/probe", server.uri()), ""),
    );
    let dir = project(&plan_text);
    std::fs::write(
        dir.path().join("plugins/burn.rhai"),
        r#"
fn send(message, s) {
    // Real messages only, so that a dry run passes quickly.
    if message.text == "slow" { let n = 0; loop { n += 1; } }
    #{ type: "http", method: "POST", url: s.url, json: #{ id: message.delivery_id } }
}
"#,
    )
    .unwrap();
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(20));
    let got = wait_for(&server, "/probe", 12, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 12, "{}", d.logs());
    // How late each probe was, by the daemon's own account (`latency_ms` is taken once
    // the gateway has answered, so it bounds the arrival from above). The line is written
    // once the `sent` mark is committed, which can be just after the gateway saw the
    // request: wait for all twelve lines.
    let probe_lines = |logs: &str| {
        logs.lines()
            .filter(|l| l.contains("channel=probe") && l.contains("Delivered."))
            .count()
    };
    let waited = std::time::Instant::now();
    while probe_lines(&d.logs()) < 12 && waited.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = d.logs();
    let mut late = Vec::new();
    for line in logs
        .lines()
        .filter(|l| l.contains("channel=probe") && l.contains("Delivered."))
    {
        let ms: i64 = line
            .split("latency_ms=")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(i64::MAX);
        late.push(ms);
    }
    assert_eq!(late.len(), 12, "{logs}");
    assert!(
        late.iter().all(|ms| *ms < 1000),
        "probe latencies (ms): {late:?}"
    );
    assert!(
        logs.contains("channel=slow"),
        "the slow channel was busy meanwhile: {logs}"
    );
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

/// A 6-field cron line that fires once at `t` (UTC).
pub fn cron_at(t: DateTime<Utc>) -> String {
    use chrono::Timelike;
    format!(
        "cron = \"{} {} {} {} {} *\"",
        t.second(),
        t.minute(),
        t.hour(),
        t.format("%-d"),
        t.format("%-m")
    )
}
