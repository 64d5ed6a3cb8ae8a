//! Several `kithd run` instances on one PostgreSQL ledger, with the real binary and a
//! private PostgreSQL cluster (`scripts/pg-cluster.sh`, 127.0.0.1 only): every reminder
//! arrives, and a reminder arrives twice only when the instance sending it was killed or
//! stalled past its lease mid-send, and is then marked uncertain in the ledger.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::daemon::{Daemon, cron_at, signal};
use crate::support::{kithd, root, text};

/// A private cluster for one test, by its directory.
pub struct Cluster {
    pub dir: String,
}

impl Cluster {
    pub fn start(name: &str) -> Self {
        let dir = format!("/tmp/kithd-pg-{name}-{}", std::process::id());
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new(root().join("scripts/pg-cluster.sh"))
            .args(["start", &dir, &std::process::id().to_string()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        Self { dir }
    }

    /// A new, empty database's URL.
    pub fn database(&self, name: &str) -> String {
        let out = Command::new(root().join("scripts/pg-cluster.sh"))
            .args(["createdb", &self.dir, name])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }

    /// Stops the server at once (as a crash) and starts it again on the same port.
    pub fn restart(&self) {
        let out = Command::new(root().join("scripts/pg-cluster.sh"))
            .args(["restart", &self.dir])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/pg-cluster.sh"))
            .args(["stop", &self.dir])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Arrivals at the sink by delivery id.
pub async fn arrivals(server: &wiremock::MockServer) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in server.received_requests().await.unwrap() {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        *seen
            .entry(body["delivery_id"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    seen
}

pub async fn wait_arrivals(server: &wiremock::MockServer, n: usize, within: Duration) {
    let t = Instant::now();
    while arrivals(server).await.len() < n {
        assert!(
            t.elapsed() < within,
            "{} of {n} arrived within {within:?}",
            arrivals(server).await.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every delivery in the shared ledger, as `kithd history --ledger URL` shows it.
fn ledger_history(dir: &std::path::Path, url: &str) -> Vec<serde_json::Value> {
    let out = kithd(
        dir,
        &[
            "history",
            "--state-dir",
            "state",
            "--format",
            "json",
            "--ledger",
            url,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_instances_survive_a_kill_a_stall_and_a_database_restart() {
    use wiremock::{Mock, ResponseTemplate, matchers::method};
    const ITEMS: usize = 600;
    let cluster = Cluster::start("chaos");
    let url = cluster.database("kithd");
    let sink = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(250)))
        .mount(&sink)
        .await;
    // 600 reminders due over six seconds, from eight seconds on.
    let start = (chrono::Utc::now() + chrono::Duration::seconds(8))
        .duration_trunc(chrono::Duration::seconds(1))
        .unwrap();
    let items: String = (0..ITEMS)
        .map(|i| {
            let at = start + chrono::Duration::seconds((i % 6) as i64);
            format!(
                "[[checkin]]\nid = \"c{i:03}\"\ncron = \"{}\"\nmessage = \"Hi\"\n\n",
                cron_at(at)
            )
        })
        .collect();
    let plan = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n\
         [channels.me]\nplugin = \"webhook\"\nurl = \"{}/me\"\ntimeout = \"5s\"\nconcurrency = 4\n\n{items}",
        sink.uri()
    );
    let dir = crate::daemon::project(&plan);
    let env = [
        ("KITHD_LEDGER", url.as_str()),
        ("KITHD_TEST_LEASE_SECS", "6"),
    ];
    let instances: Vec<Daemon> = (0..3).map(|_| Daemon::start(dir.path(), &env)).collect();
    for d in &instances {
        d.wait_log("Ready.", Duration::from_secs(20));
        assert!(d.logs().contains("Using the shared PostgreSQL ledger."));
    }
    let mut instances = instances.into_iter();
    let (killed, stalled, steady) = (
        instances.next().unwrap(),
        instances.next().unwrap(),
        instances.next().unwrap(),
    );
    // Mid-storm: one instance is killed, another stalls past its lease and comes back,
    // and the database restarts.
    wait_arrivals(&sink, 100, Duration::from_secs(30)).await;
    let status = text(
        &kithd(
            dir.path(),
            &["status", "--state-dir", "state", "--ledger", &url],
        )
        .stdout,
    );
    assert!(
        status.contains("Shared ledger: maintenance led by"),
        "{status}"
    );
    killed.kill9();
    wait_arrivals(&sink, 180, Duration::from_secs(30)).await;
    signal(stalled.pid(), "STOP");
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal(stalled.pid(), "CONT");
    wait_arrivals(&sink, 300, Duration::from_secs(30)).await;
    cluster.restart();
    wait_arrivals(&sink, ITEMS, Duration::from_secs(60)).await;
    // The killed instance's claims come back when their leases end and are sent again.
    let t = Instant::now();
    let history = loop {
        let history = ledger_history(dir.path(), &url);
        let settled = history
            .iter()
            .all(|d| d["state"] == "sent" || d["uncertain"] == true);
        if settled {
            break history;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "not settled within a minute"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let (code, _, logs) = stalled.stop();
    assert_eq!(code, Some(0), "{logs}");
    let (code, _, logs) = steady.stop();
    assert_eq!(code, Some(0), "{logs}");

    let seen = arrivals(&sink).await;
    assert_eq!(seen.len(), ITEMS, "every reminder arrived");
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    let uncertain: Vec<&str> = history
        .iter()
        .filter(|d| d["uncertain"] == true)
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    // Marked sent, or waiting for a retry after an attempt that got no answer in time (the
    // stalled instance's, whose timers ran out while it was stopped): uncertain.
    let unsent: Vec<&serde_json::Value> = history
        .iter()
        .filter(|d| d["state"] != "sent" && !(d["state"] == "pending" && d["uncertain"] == true))
        .collect();
    assert!(unsent.is_empty(), "not sent: {unsent:#?}");
    for id in &twice {
        if !uncertain.contains(&id.as_str()) {
            let row = history.iter().find(|d| d["id"] == id.as_str());
            let logs: Vec<String> = std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("stderr-"))
                .map(|e| {
                    let name = e.file_name().to_string_lossy().to_string();
                    let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                    let lines: Vec<&str> = text
                        .lines()
                        .filter(|l| {
                            l.contains(id.as_str()) || l.contains("WARN") || l.contains("ERROR")
                        })
                        .collect();
                    format!("{name}:\n{}", lines.join("\n"))
                })
                .collect();
            panic!(
                "{id} arrived twice but is not marked uncertain: {row:#?}\n{}",
                logs.join("\n")
            );
        }
    }
    // Only what was in flight on the two instances that stopped: at most their channel's
    // four slots each, and each claim taken over once.
    assert!(
        twice.len() <= 8,
        "{} delivered twice: {twice:?}",
        twice.len()
    );
    // One instance led maintenance at a time (and one took over if the killed one led).
    let all_logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("stderr-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        all_logs.contains("now leads maintenance of the shared ledger"),
        "no leader"
    );
    println!(
        "{} reminders, {} arrived twice, {} marked uncertain",
        seen.len(),
        twice.len(),
        uncertain.len()
    );
}

use chrono::DurationRound;

#[tokio::test(flavor = "multi_thread")]
async fn a_one_machine_ledger_moves_to_postgresql_whole() {
    let cluster = Cluster::start("copy");
    let url = cluster.database("moved");
    let sink = crate::daemon::receiver().await;
    let (_, cron) = crate::daemon::cron_in(2);
    let dir = crate::daemon::project(&crate::daemon::plan(
        &["me"],
        &crate::daemon::webhook("me", &format!("{}/me", sink.uri()), ""),
        &format!(
            "[[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nmessage = \"How are you?\"\n\n\
             [[medication]]\nid = \"meds\"\nname = \"x\"\ncron = \"{cron}\"\nmessage = \"Dose\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &[]);
    crate::daemon::wait_for(&sink, "/me", 2, Duration::from_secs(15)).await;
    dir.kithd(&[
        "ack",
        "meds",
        "--value",
        "taken",
        "--note",
        "with breakfast",
        "--state-dir",
        "state",
    ])
    .status(0)
    .run();
    dir.kithd(&[
        "pause",
        "--until",
        "30d",
        "--items",
        "mood",
        "--state-dir",
        "state",
    ])
    .status(0)
    .run();
    assert!(
        crate::person_page::set_passphrase(&dir, "moved along with it")
            .status
            .success()
    );
    // While the daemon runs, nothing is copied.
    dir.kithd(&["ledger", "copy", "--from", "sqlite:state", "--to", &url])
        .status(69)
        .stderr_has("stop it first")
        .run();
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    let read = |args: &[&str]| text(&kithd(dir.path(), args).stdout);
    let before = (
        read(&["history", "--state-dir", "state"]),
        read(&["report", "--state-dir", "state", "--format", "json"]),
        read(&["status", "--state-dir", "state"]),
    );
    dir.kithd(&[
        "ledger",
        "copy",
        "--from",
        "sqlite:state/kithd.db",
        "--to",
        &url,
    ])
    .stdout_has("copied 2 firings, 2 deliveries, 1 answers")
    .run();
    let after = (
        read(&["history", "--state-dir", "state", "--ledger", &url]),
        read(&[
            "report",
            "--state-dir",
            "state",
            "--format",
            "json",
            "--ledger",
            &url,
        ]),
        read(&["status", "--state-dir", "state", "--ledger", &url]),
    );
    assert_eq!(before.0, after.0, "history");
    assert_eq!(before.1, after.1, "report");
    assert!(
        before.0.contains("note: \"with breakfast\""),
        "{}",
        before.0
    );
    assert!(before.2.contains("Paused: mood until"), "{}", before.2);
    assert!(after.2.contains("Paused: mood until"), "{}", after.2);
    let page = |status: &str| {
        status
            .lines()
            .find(|l| l.starts_with("Your page (/me): open with the passphrase set "))
            .map(str::to_string)
    };
    assert!(page(&before.2).is_some(), "{}", before.2);
    assert_eq!(page(&before.2), page(&after.2), "the passphrase hash moved");
    assert!(
        after
            .2
            .contains("Shared ledger: no instance leads maintenance now")
            && after.2.contains("no instance is sending now"),
        "{}",
        after.2
    );
    // Into a database that already holds a ledger: refused, nothing changed.
    dir.kithd(&["ledger", "copy", "--from", "sqlite:state", "--to", &url])
        .status(73)
        .stderr_has("copy only into an empty database")
        .run();
    assert_eq!(
        read(&["history", "--state-dir", "state", "--ledger", &url]),
        after.0
    );
}
