//! The answer server under abuse (issue 10, section 3), with the real binary under a low
//! descriptor limit (`prlimit --nofile=160`): 200 idle, half-header and slow-body
//! connections are held open, and a real answer still gets through within a second; held
//! connections are closed by the header, request and idle timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::daemon::{cron_in, project, receiver, wait_for, webhook};
use crate::support::bin;

const KEY: &str = "0123456789abcdef0123456789abcdef-abuse-key";

#[tokio::test(flavor = "multi_thread")]
async fn a_real_answer_gets_through_while_200_connections_are_held() {
    let sink = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n[server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:0\"\n\n{}\n[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"1h\"\nmessage = \"How are you? {{answer_url}}\"\n",
        webhook("me", &format!("{}/me", sink.uri()), "")
    ));
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut child = Command::new("prlimit")
        .args(["--nofile=160:160", "--"])
        .arg(bin())
        .args([
            "run",
            "plan.toml",
            "--state-dir",
            "state",
            "--plugins",
            "plugins",
        ])
        .current_dir(dir.path())
        .env("KITHD_SECRET_ANSWER_KEY", KEY)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let logs = || std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default();
    let got = wait_for(&sink, "/me", 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "{}", logs());
    assert!(logs().contains("max_connections=48"), "{}", logs());
    // Listening on port 0: the address the system gave is in the log.
    let addr = logs()
        .lines()
        .find(|l| l.contains("Answer server listening."))
        .and_then(|l| l.split("listen=").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no listening address:\n{}", logs()));
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    let text = got[0]["text"].as_str().unwrap().to_string();
    let link = text[text.find("http://").unwrap()..]
        .trim()
        .replacen("127.0.0.1:0", &addr, 1);

    // 200 bad connections, held: idle, half a header, and a body that never comes.
    let mut held = Vec::new();
    for i in 0..200 {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        let _ = match i % 3 {
            0 => Ok(()),
            1 => s.write_all(b"GET /a/x HTTP/1.1\r\nHost: a\r\n"),
            _ => s.write_all(
                b"POST /a/x HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nvalue",
            ),
        };
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The person answers.
    let t = Instant::now();
    let answered = reqwest::Client::new()
        .post(&link)
        .form(&[("value", "ok")])
        .timeout(Duration::from_secs(5))
        .send()
        .await;
    let took = t.elapsed();
    let status = answered.map(|r| r.status().as_u16());
    assert_eq!(status.as_ref().ok(), Some(&200), "{status:?}\n{}", logs());
    assert!(took < Duration::from_secs(1), "the answer took {took:?}");

    // Held connections are closed by the server (shed at the cap, or timed out).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut closed = 0;
    for s in &mut held {
        let left = deadline.saturating_duration_since(Instant::now());
        s.set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut buf = [0u8; 512];
        match s.read(&mut buf) {
            Ok(_) => closed += 1, // EOF, or a 408 just before closing
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, held.len(), "connections still held after 15 s");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{}", logs());
}
