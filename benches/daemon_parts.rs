//! The pieces the daemon benchmarks share (included with `#[path]`; not a bench of its
//! own): the loopback sink, the generated plan, `kithd run` started as a child waiting for
//! READY, and reading the machine's load and a process's CPU and memory.

#![allow(dead_code)]

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

pub const KITHD: &str = env!("CARGO_BIN_EXE_kithd");

/// The machine's 1-minute load average, reported beside every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// (VmRSS, VmHWM) of a process in MB.
pub fn rss_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// utime + stime of a process, in seconds.
pub fn cpu_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

/// One arrival at the sink: the delivery id and how late it came, in ms.
pub type Arrival = (String, f64);

/// A loopback HTTP/1.1 sink that answers 200 to every request and records, from the
/// webhook plugin's JSON body, the delivery id and `scheduled`.
pub struct Sink {
    pub port: u16,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
}

impl Sink {
    pub async fn start() -> Sink {
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let rec = arrivals.clone();
        let port = super::common::http_sink(move |body| {
            let now = Utc::now();
            let body: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let id = body["delivery_id"].as_str().unwrap_or("").to_string();
            let late = body["scheduled"]
                .as_str()
                .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
                .map(|at| {
                    (now - at.with_timezone(&Utc))
                        .num_microseconds()
                        .unwrap_or(0) as f64
                        / 1e3
                })
                .unwrap_or(f64::NAN);
            rec.lock().unwrap().push((id, late));
        })
        .await;
        Sink { port, arrivals }
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    pub fn take(&self) -> Vec<Arrival> {
        std::mem::take(&mut *self.arrivals.lock().unwrap())
    }
}

/// A plan whose `n` check-ins fall due at `at(i)`, delivered through the webhook plugin.
pub fn plan(port: u16, concurrency: Option<u32>, n: usize, at: impl Fn(usize) -> String) -> String {
    let mut text = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"hook\"]\n\n[channels.hook]\nplugin = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"
    );
    if let Some(c) = concurrency {
        text.push_str(&format!("concurrency = {c}\n"));
    }
    text.push('\n');
    text.reserve(n * 80);
    for i in 0..n {
        text.push_str(&format!(
            "[[checkin]]\nid = \"c{i}\"\ncron = \"{}\"\nmessage = \"How are you doing today?\"\n\n",
            at(i)
        ));
    }
    text
}

/// `kithd run` in `dir` with the bundled plugins, until dropped (SIGTERM, then wait).
pub struct Daemon {
    child: Child,
    pub ready_ms: f64,
    /// Kept open: the daemon keeps notifying (STATUS=, WATCHDOG=1).
    _notify: UnixDatagram,
}

impl Daemon {
    pub fn start(dir: &Path, state: &str) -> Daemon {
        Self::start_with(dir, state, &[], Stdio::inherit())
    }

    /// As `start`, with extra environment (`KITHD_LEDGER`, `RUST_LOG`) and stderr.
    pub fn start_with(dir: &Path, state: &str, env: &[(&str, &str)], stderr: Stdio) -> Daemon {
        let sock_path = dir.join(format!("{state}.notify"));
        let _ = std::fs::remove_file(&sock_path);
        let sock = UnixDatagram::bind(&sock_path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let t = Instant::now();
        let child = Command::new(KITHD)
            .args([
                "run",
                "plan.toml",
                "--plugins",
                &plugins_dir(),
                "--state-dir",
            ])
            .arg(state)
            .current_dir(dir)
            .env("NOTIFY_SOCKET", &sock_path)
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let mut buf = [0u8; 512];
        loop {
            let n = sock.recv(&mut buf).expect("READY=1 within 120 s");
            if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                break;
            }
        }
        Daemon {
            ready_ms: t.elapsed().as_secs_f64() * 1000.0,
            child,
            _notify: sock,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::forget(self);
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        term(self.child.id());
        let _ = self.child.wait();
    }
}

pub fn term(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
}

/// The plan, readable by its owner only (as the README asks of health data).
pub fn write_plan(dir: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("plan.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn plugins_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("plugins")
        .display()
        .to_string()
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits until `done()` or the deadline; returns whether it happened.
pub fn wait_until(deadline: Instant, mut done: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}
