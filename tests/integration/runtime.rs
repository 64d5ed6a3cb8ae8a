//! `kithd run` as a real process: fires on time and once, reloads on SIGHUP (broken and
//! changed plans), drains and exits 0 on SIGTERM, refuses a bad plan with 78, speaks the
//! sd_notify protocol on a real datagram socket, and crosses a DST change under faketime.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::daemon::{
    Daemon, bodies, canary, cron_in, plan, project, receiver, wait_canary, wait_for, webhook,
};

/// Sixty check-ins, one at each second of the minute: a message every second from items
/// that each fire once a minute (a plan may not fire one item more often).
pub fn each_second(prefix: &str) -> String {
    (0..60)
        .map(|s| {
            format!(
                "[[checkin]]\nid = \"{prefix}-{s:02}\"\ncron = \"{s} * * * * *\"\nmessage = \"{prefix}\"\n"
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn fires_once_at_the_right_time() {
    let server = receiver().await;
    let (at, cron) = cron_in(3);
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/soon", server.uri()), ""),
        &format!(
            "[[medication]]\nid = \"soon\"\nname = \"lithium\"\ncron = \"{cron}\"\nmessage = \"Take your {{name}}.\"\n\n{}",
            canary(at + chrono::Duration::seconds(2))
        ),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    let got = wait_for(&server, "/soon", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    let received_at = Utc::now();
    let scheduled: DateTime<Utc> = got[0]["scheduled"].as_str().unwrap().parse().unwrap();
    assert_eq!(scheduled, at);
    // Never early. How late, under load, is the daemon benchmark's business.
    assert!(received_at >= at, "early by {}", at - received_at);
    assert_eq!(got[0]["text"], "Take your lithium.");
    // No double fire: by the canary, two seconds on, the loop has passed `at` again.
    wait_canary(&server, "/soon", Duration::from_secs(15)).await;
    // Message bodies never reach the info log.
    let (code, took, logs) = d.stop();
    assert_eq!(code, Some(0));
    let soon: Vec<_> = bodies(&server, "/soon")
        .await
        .into_iter()
        .filter(|b| b["item"] == "soon")
        .collect();
    assert_eq!(soon.len(), 1, "{soon:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
    assert!(
        logs.contains("Delivered.") && !logs.contains("Take your lithium"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_with_a_broken_plan_keeps_the_old_one_and_a_changed_plan_takes_over() {
    let server = receiver().await;
    let channels = format!(
        "{}{}",
        webhook("hook", &format!("{}/tick", server.uri()), ""),
        webhook("hook2", &format!("{}/tock", server.uri()), "")
    );
    let dir = project(&plan(&["hook", "hook2"], &channels, &each_second("tick")));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    assert!(
        !wait_for(&server, "/tick", 1, Duration::from_secs(5))
            .await
            .is_empty()
    );

    // A broken plan: errors logged with line:column, the old plan keeps firing.
    std::fs::write(
        dir.path().join("plan.toml"),
        "[person]\nname = \"Alex\"\ntimezone = \"Mars/Base\"\n",
    )
    .unwrap();
    d.hup();
    d.wait_log("the previous plan keeps running", Duration::from_secs(5));
    assert!(
        d.logs()
            .contains("plan.toml:3:12: error: unknown time zone `Mars/Base`"),
        "{}",
        d.logs()
    );
    let before = bodies(&server, "/tick").await.len();
    let after = wait_for(&server, "/tick", before + 2, Duration::from_secs(5))
        .await
        .len();
    assert!(
        after >= before + 2,
        "the old plan stopped firing after a bad reload"
    );

    // A changed plan: `tock` (to the second channel) replaces `tick`.
    let channels2 = webhook("hook2", &format!("{}/tock", server.uri()), "");
    std::fs::write(
        dir.path().join("plan.toml"),
        plan(&["hook2"], &channels2, &each_second("tock")),
    )
    .unwrap();
    d.hup();
    d.wait_log("Plan reloaded.", Duration::from_secs(5));
    let tick_after_reload = bodies(&server, "/tick").await.len();
    assert!(
        wait_for(&server, "/tock", 2, Duration::from_secs(5))
            .await
            .len()
            >= 2
    );
    // Two more seconds of `tock`: a removed `tick` still firing would have fired in them.
    let tocks = bodies(&server, "/tock").await.len();
    assert!(
        wait_for(&server, "/tock", tocks + 2, Duration::from_secs(5))
            .await
            .len()
            >= tocks + 2
    );
    assert!(
        bodies(&server, "/tick").await.len() <= tick_after_reload + 1,
        "a removed item kept firing"
    );
    let items: Vec<String> = bodies(&server, "/tock")
        .await
        .iter()
        .map(|b| b["item"].as_str().unwrap().to_string())
        .collect();
    assert!(items.iter().all(|i| i.starts_with("tock-")), "{items:?}");
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_in_flight_deliveries_finish_within_the_bound() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&server)
        .await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/slow", server.uri()), ""),
        &format!("[[checkin]]\nid = \"slow\"\ncron = \"{cron}\"\nmessage = \"x\"\n"),
    ));
    let d = Daemon::start(dir.path(), &[]);
    d.wait_log("Ready.", Duration::from_secs(10));
    assert_eq!(
        wait_for(&server, "/slow", 1, Duration::from_secs(6))
            .await
            .len(),
        1
    );
    let (code, took, logs) = d.stop();
    assert_eq!(code, Some(0));
    assert!(logs.contains("Stopping. in_flight=1"), "{logs}");
    assert!(
        logs.contains("Delivered."),
        "the in-flight delivery was not allowed to finish:\n{logs}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
}

#[test]
fn a_plan_that_cannot_load_exits_78() {
    let dir = project("[person]\nname = \"A\"\n");
    let d = Daemon::start(dir.path(), &[]);
    let (code, logs) = d.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(78));
    assert!(
        logs.contains("plan.toml:1:1: error: missing `timezone` in [person]"),
        "{logs}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sd_notify_handshake_on_a_real_socket() {
    let server = receiver().await;
    let dir = project(&plan(
        &["hook"],
        &webhook("hook", &format!("{}/n", server.uri()), ""),
        "[[checkin]]\nid = \"daily\"\nat = \"09:00\"\nmessage = \"x\"\n",
    ));
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    // Generous: on a machine busy with the rest of the suite a start can take seconds.
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let d = Daemon::start(
        dir.path(),
        &[
            ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
            ("RUST_LOG", "debug"),
        ],
    );
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = sock
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notify datagram ({e}):\n{}", d.logs()));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let ready = recv();
    assert!(
        ready.starts_with("READY=1\nSTATUS=Next reminder at "),
        "{ready}"
    );
    assert!(ready.contains(" 09:00 +00:00."), "{ready}");
    d.hup();
    let reloading = recv();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    let ready_again = recv();
    assert!(ready_again.starts_with("READY=1\n"), "{ready_again}");
    crate::daemon::signal(d.pid(), "TERM");
    let stopping = recv();
    assert!(stopping.starts_with("STOPPING=1"), "{stopping}");
    let (code, _) = d.wait_exit(Duration::from_secs(10));
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn crosses_a_dst_change_under_faketime() {
    // Europe/Berlin springs forward at 2027-03-28 01:00Z (02:00 → 03:00 local). A daily
    // 02:30 must fire at 03:00 CEST, i.e. 01:00:00Z; the process starts 10 s before (a
    // loaded machine can take seconds to start a debug build under faketime, and a firing
    // before the first start is, rightly, not caught up).
    let server = receiver().await;
    let dir = project(&format!(
        "[person]\nname = \"Alex\"\ntimezone = \"Europe/Berlin\"\nreach = [\"hook\"]\n\n{}\n[[medication]]\nid = \"night\"\nname = \"x\"\nat = \"02:30\"\nmessage = \"Dose.\"\n",
        webhook("hook", &format!("{}/dst", server.uri()), "")
    ));
    let d = Daemon::start_with(
        dir.path(),
        &[("RUST_LOG", "debug")],
        Some("2027-03-28 00:59:50"),
    );
    let got = wait_for(&server, "/dst", 1, Duration::from_secs(25)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    assert_eq!(got[0]["scheduled"], "2027-03-28T03:00:00+02:00");
    // Logged once the `sent` mark is committed, a moment after the receiver has it.
    d.wait_log("latency_ms=", Duration::from_secs(10));
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
    // `history` shows it in the person's zone, and reads `--since` in it too.
    dir.kithd(&[
        "history",
        "--state-dir",
        "state",
        "--since",
        "2027-03-28T02:59",
    ])
    .status(0)
    .stdout_has("Sun 2027-03-28 03:00 Europe/Berlin  medication  night ")
    .run();
    dir.kithd(&[
        "history",
        "--state-dir",
        "state",
        "--since",
        "2027-03-28T03:01",
    ])
    .status(0)
    .stdout("")
    .run();
}
