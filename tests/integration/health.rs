//! Someone notices when kithd itself is down or degraded: heartbeat pings (Healthchecks.io
//! protocol) to a real HTTP peer, `status --check` exit codes, and `STATUS=degraded: …`.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::builder::Cmd;
use crate::daemon::{Daemon, cron_in, plan, project, webhook};
use crate::support::text;

fn status_check(dir: &Path) -> (Option<i32>, String) {
    let out = Cmd::new(dir, &["status", "--check", "--state-dir", "state"]).output();
    (out.status.code(), text(&out.stdout))
}

/// Waits until `n` requests reached `path`; returns their bodies as text.
async fn pings(server: &MockServer, at: &str, n: usize) -> Vec<String> {
    for _ in 0..200 {
        let got: Vec<String> = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == at)
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Vec::new()
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_status_check_and_status_say_when_kithd_is_degraded() {
    let server = MockServer::start().await;
    for p in ["/ping", "/ping/fail", "/good"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    Mock::given(method("POST"))
        .and(path("/bad"))
        .respond_with(ResponseTemplate::new(400).set_body_string("invalid number"))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(3);
    let heartbeat = format!(
        "[heartbeat]\nurl = \"{}/ping\"\nevery = \"1m\"\n",
        server.uri()
    );
    let item = format!(
        "[[medication]]\nid = \"dose\"\nname = \"lithium\"\ncron = \"{cron}\"\nmessage = \"Dose\"\n"
    );
    let dir = project(&format!(
        "{heartbeat}{}",
        plan(
            &["hook"],
            &webhook("hook", &format!("{}/bad", server.uri()), ""),
            &item
        )
    ));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let d = Daemon::start(
        dir.path(),
        &[("NOTIFY_SOCKET", sock_path.to_str().unwrap())],
    );
    d.wait_log("Ready.", Duration::from_secs(10));
    // A healthy start pings `{url}`.
    assert_eq!(pings(&server, "/ping", 1).await.len(), 1, "{}", d.logs());
    let (code, line) = status_check(dir.path());
    assert_eq!((code, line.as_str()), (Some(0), "KITHD OK - healthy\n"));

    // The dose fails permanently on its only channel: a dead letter, and a failing channel.
    let fail = pings(&server, "/ping/fail", 1).await;
    assert_eq!(fail.len(), 1, "{}", d.logs());
    assert_eq!(
        fail[0],
        "degraded: 1 dead letter in the last 24 h; channel `hook`: its latest attempt failed permanently"
    );
    assert!(!fail[0].contains("invalid number") && !fail[0].contains("Dose"));
    let (code, line) = status_check(dir.path());
    assert_eq!(code, Some(1), "{line}");
    assert!(
        line.starts_with("KITHD WARNING - degraded: 1 dead letter"),
        "{line}"
    );
    let mut buf = [0u8; 4096];
    let status = loop {
        let n = sock.recv(&mut buf).expect("a STATUS= datagram");
        let m = String::from_utf8_lossy(&buf[..n]).into_owned();
        if m.contains("degraded") {
            break m;
        }
    };
    assert!(
        status.starts_with("STATUS=degraded: 1 dead letter"),
        "{status}"
    );
    dir.kithd(&["status", "--state-dir", "state"])
        .status(0)
        .stdout_has("Health: degraded: 1 dead letter")
        .run();

    // Stopped: nothing is running, and `status --check` says so.
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
    let (code, line) = status_check(dir.path());
    assert_eq!(code, Some(2), "{line}");
    assert!(
        line.starts_with("KITHD CRITICAL - no kithd is running"),
        "{line}"
    );
    let empty = tempfile::tempdir().unwrap();
    assert_eq!(status_check(empty.path()).0, Some(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_reload_degrades_until_a_good_one_clears_it() {
    let server = MockServer::start().await;
    for p in ["/ping", "/ping/fail"] {
        Mock::given(method("POST"))
            .and(path(p))
            .respond_with(ResponseTemplate::new(200))
            .mount(&server)
            .await;
    }
    let heartbeat = format!("[heartbeat]\nurl = \"{}/ping\"\n", server.uri());
    let good = format!(
        "{heartbeat}{}",
        plan(
            &["console"],
            "[channels.console]\nplugin = \"console\"\n",
            ""
        )
    );
    let dir = project(&good);
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    assert_eq!(pings(&server, "/ping", 1).await.len(), 1);
    // A reload whose channel needs a secret the daemon doesn't have.
    std::fs::write(
        dir.path().join("plan.toml"),
        format!(
            "{heartbeat}{}",
            plan(
                &["hook"],
                &webhook(
                    "hook",
                    "https://hooks.example.org/x",
                    "signing_secret = { secret = \"missing\" }"
                ),
                ""
            )
        ),
    )
    .unwrap();
    d.hup();
    let fail = pings(&server, "/ping/fail", 1).await;
    assert_eq!(fail.len(), 1, "{}", d.logs());
    assert!(
        fail[0].contains("the reloaded plan has 1 problem"),
        "{}",
        fail[0]
    );
    let (code, line) = status_check(dir.path());
    assert_eq!(code, Some(1), "{line}");
    // Fixed: healthy again by itself, and the monitor hears so.
    std::fs::write(dir.path().join("plan.toml"), &good).unwrap();
    d.hup();
    d.wait_log("kithd is healthy again.", Duration::from_secs(5));
    assert_eq!(pings(&server, "/ping", 2).await.len(), 2);
    assert_eq!(status_check(dir.path()).0, Some(0));
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn a_heartbeat_must_be_https_and_at_most_once_a_minute() {
    let dir = project(&format!(
        "[heartbeat]\nurl = \"http://monitor.example.org/ping\"\nevery = \"30s\"\n{}",
        plan(
            &["console"],
            "[channels.console]\nplugin = \"console\"\n",
            ""
        )
    ));
    dir.kithd(&["check", "plan.toml", "--plugins", "plugins"])
        .status(65)
        .stderr_has("is not an https URL")
        .stderr_has("plan.toml:2:7")
        .run();
}
