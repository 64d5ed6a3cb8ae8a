//! A handle on a running `kithd run`: logs captured to files, signals, and a clean stop.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, Timelike, Utc};

use crate::builder::{Cmd, Project};

pub struct Daemon {
    pub child: Child,
    pub dir: PathBuf,
    pub stderr: PathBuf,
    pub stdout: PathBuf,
}

pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

impl Daemon {
    /// Starts `kithd run plan.toml --state-dir state --plugins plugins` in `dir`.
    pub fn start(dir: &Path, extra_env: &[(&str, &str)]) -> Self {
        Self::start_with(dir, extra_env, None)
    }

    /// As `start`, optionally under libfaketime starting at `fake_start` (UTC).
    pub fn start_with(dir: &Path, extra_env: &[(&str, &str)], fake_start: Option<&str>) -> Self {
        Self::spawn(dir, "plan.toml", extra_env, fake_start)
    }

    /// `kithd run PLAN …` with PLAN a plan file or a directory of plans, in `dir`.
    pub fn start_plan(dir: &Path, plan: &str, extra_env: &[(&str, &str)]) -> Self {
        Self::spawn(dir, plan, extra_env, None)
    }

    fn spawn(dir: &Path, plan: &str, extra_env: &[(&str, &str)], fake_start: Option<&str>) -> Self {
        let n = std::fs::read_dir(dir).unwrap().count();
        let stderr = dir.join(format!("stderr-{n}.log"));
        let stdout = dir.join(format!("stdout-{n}.log"));
        let mut cmd = Cmd::new(
            dir,
            &[
                "run",
                plan,
                "--state-dir",
                "state",
                "--plugins",
                "plugins",
                "--shutdown-grace",
                "5",
            ],
        )
        .env("RUST_LOG", "info")
        .env("TZ", "UTC")
        .command();
        cmd.env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap());
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        if let Some(start) = fake_start {
            cmd.env(
                "LD_PRELOAD",
                "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
            )
            .env("FAKETIME", format!("@{start}"))
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("FAKETIME_DONT_RESET", "1");
        }
        let child = cmd.spawn().expect("start kithd run");
        Self {
            child,
            dir: dir.to_path_buf(),
            stderr,
            stdout,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until the logs contain `needle` (panics after `within`).
    pub fn wait_log(&self, needle: &str, within: Duration) {
        let t = Instant::now();
        while t.elapsed() < within {
            if self.logs().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "no `{needle}` in the logs within {within:?}:\n{}",
            self.logs()
        );
    }

    /// The answer server's base URL, from its "listening" log line (plans in tests listen
    /// on `127.0.0.1:0`, so the system picks a free port and no other test can take it).
    /// The `n`th time it started (1 = first).
    pub fn answer_base_nth(&self, n: usize) -> String {
        let t = Instant::now();
        loop {
            let logs = self.logs();
            let addrs: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("Answer server listening."))
                .filter_map(|l| l.split("listen=").nth(1))
                .filter_map(|rest| rest.split_whitespace().next())
                .collect();
            if let Some(addr) = addrs.get(n - 1) {
                return format!("http://{addr}");
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "the answer server did not start {n} time(s):\n{logs}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The answer server's base URL (its first start).
    pub fn answer_base(&self) -> String {
        self.answer_base_nth(1)
    }

    pub fn hup(&self) {
        signal(self.pid(), "HUP");
    }

    /// SIGTERM and wait; returns the exit code and how long the exit took.
    pub fn stop(mut self) -> (Option<i32>, Duration, String) {
        signal(self.pid(), "TERM");
        let t = Instant::now();
        let code = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st.code();
            }
            if t.elapsed() > Duration::from_secs(30) {
                let _ = self.child.kill();
                panic!("kithd did not stop within 30 s:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        (code, t.elapsed(), self.logs())
    }

    /// kill -9, no cleanup.
    pub fn kill9(mut self) {
        signal(self.pid(), "KILL");
        let _ = self.child.wait();
    }

    pub fn wait_exit(mut self, within: Duration) -> (Option<i32>, String) {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return (st.code(), self.logs());
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                panic!("kithd still running after {within:?}:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole second at least `secs` seconds from now, and its 6-field cron expression (UTC).
pub fn cron_in(secs: i64) -> (DateTime<Utc>, String) {
    let t = (Utc::now() + chrono::Duration::milliseconds(secs * 1000 + 999))
        .with_nanosecond(0)
        .unwrap();
    (t, cron_at(t))
}

/// A check-in to the person at `t` through channel `me`, with no answer expected: when it
/// arrives, the daemon has run its loop at or after `t`, so whatever was due by `t` (a
/// step, an escalation) has been taken. Tests that assert something did *not* happen wait
/// for this instead of sleeping, so a slow machine can't make them pass without looking.
pub fn canary(t: DateTime<Utc>) -> String {
    format!(
        "[[checkin]]\nid = \"canary\"\ncron = \"{}\"\nto = [\"self\"]\nmessage = \"canary\"\n",
        cron_at(t)
    )
}

/// Waits for the canary (see `canary`) at `path`; then stop the daemon before asserting,
/// so anything claimed in the same pass has finished too.
pub async fn wait_canary(server: &wiremock::MockServer, path: &str, within: Duration) {
    let t = Instant::now();
    while !bodies(server, path)
        .await
        .iter()
        .any(|b| b["item"] == "canary")
    {
        assert!(
            t.elapsed() < within,
            "the canary did not arrive within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fixed-offset zone (`Etc/GMT-5`, …) in which it is now between 11:00 and 13:00, so a
/// test about "today" in the person's zone never runs across their midnight.
pub fn zone_near_noon() -> String {
    let hour = i64::from(Utc::now().hour());
    let east = 12 - hour; // hours east of UTC: -11..=12
    // The Etc zones' signs are POSIX's: Etc/GMT-5 is five hours east.
    match east {
        0 => "Etc/GMT".to_string(),
        e if e > 0 => format!("Etc/GMT-{e}"),
        e => format!("Etc/GMT+{}", -e),
    }
}

/// The 6-field cron expression (UTC) of the whole second `t`.
pub fn cron_at(t: DateTime<Utc>) -> String {
    format!(
        "{} {} {} {} {} *",
        t.second(),
        t.minute(),
        t.hour(),
        t.format("%-d"),
        t.format("%-m")
    )
}

/// A plan in UTC whose person is reached through `channels` (TOML) with reach `reach`.
pub fn plan(reach: &[&str], channels: &str, items: &str) -> String {
    let reach: Vec<String> = reach.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [{}]\n\n{channels}\n{items}",
        reach.join(", ")
    )
}

pub fn webhook(id: &str, url: &str, extra: &str) -> String {
    format!("[channels.{id}]\nplugin = \"webhook\"\nurl = \"{url}\"\ntimeout = \"5s\"\n{extra}\n")
}

pub fn project(plan_text: &str) -> Project {
    Project::new(plan_text)
}

/// A webhook peer that answers its first `n` POSTs with `first` and every later one with 200.
pub async fn gateway_whose_first_answers_are(
    n: u64,
    first: wiremock::ResponseTemplate,
) -> wiremock::MockServer {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(first)
        .up_to_n_times(n)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// A webhook receiver on 127.0.0.1 that answers 200 to every POST.
pub async fn receiver() -> wiremock::MockServer {
    use wiremock::{Mock, ResponseTemplate, matchers::method};
    let server = wiremock::MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&server)
        .await;
    server
}

/// The JSON bodies received at `path`.
pub async fn bodies(server: &wiremock::MockServer, path: &str) -> Vec<serde_json::Value> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == path)
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

/// Waits until `n` bodies arrived at `path` (or `within` passed) and returns them.
pub async fn wait_for(
    server: &wiremock::MockServer,
    path: &str,
    n: usize,
    within: Duration,
) -> Vec<serde_json::Value> {
    let t = Instant::now();
    loop {
        let b = bodies(server, path).await;
        if b.len() >= n || t.elapsed() > within {
            return b;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until `n` requests of any body arrived at `path` (or `within` passed); how many did.
pub async fn wait_for_requests(
    server: &wiremock::MockServer,
    path: &str,
    n: usize,
    within: Duration,
) -> usize {
    let t = Instant::now();
    loop {
        let count = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path() == path)
            .count();
        if count >= n || t.elapsed() > within {
            return count;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs `{"from", "text"}` to the answer server's `/inbound` with `token`: its JSON.
pub async fn inbound(base: &str, token: &str, from: &str, text: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base}/inbound"))
        .bearer_auth(token)
        .json(&serde_json::json!({"from": from, "text": text}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The first link under `public` in `text`, pointed at the answer server `base`.
pub fn link_at(text: &str, public: &str, base: &str) -> String {
    let start = text.find(public).expect("a link in the text");
    text[start..]
        .split_whitespace()
        .next()
        .unwrap()
        .replacen(public, base, 1)
}

/// POSTs a page's form with `value = VALUE` to `link`: the page's text.
pub async fn choose(link: &str, value: &str) -> String {
    reqwest::Client::new()
        .post(link)
        .form(&[("value", value)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
