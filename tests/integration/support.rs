//! Test harness: runs the real binary, locates project files, and blesses golden files
//! when `KITHD_BLESS=1`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Output;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kithd")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn blessing() -> bool {
    std::env::var_os("KITHD_BLESS").is_some_and(|v| v == "1")
}

/// Runs `kithd ARGS` in `dir` (see `builder::Cmd` for the environment it gets).
pub fn kithd(dir: &Path, args: &[&str]) -> Output {
    crate::builder::Cmd::new(dir, args).output()
}

/// A port that was free a moment ago on 127.0.0.1, for the one test that must name a
/// port (rebinding on reload). Servers in tests otherwise bind port 0. It is drawn from
/// below the range the system hands out for port 0 (32768 and up on Linux), so a server
/// started by another test can't be given it between this check and the daemon's bind.
pub fn free_port() -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() as u64)
            .unwrap_or(0);
    (0..2000u64)
        .map(|i| 20_000 + ((seed + i * 7919) % 12_000) as u16)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below the ephemeral range")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Compares `actual` with the golden file, or writes it when blessing.
pub fn golden(path: &Path, actual: &str) -> Result<(), String> {
    if blessing() {
        std::fs::write(path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: {e} (run with KITHD_BLESS=1 to create)", path.display()))?;
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{} differs\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        ))
    }
}

/// A temporary project whose plan is `PERSON` plus some channels.
pub struct Sandbox {
    pub project: crate::builder::Project,
}

pub const PERSON: &str = r#"[person]
name = "Alex"
timezone = "Europe/Berlin"
email = "alex@example.org"
phone = "+4915100000001"
ntfy_topic = "alex-reminders"
reach = ["console"]

[contacts.sam]
name = "Sam"
relation = "friend"
email = "sam@example.org"
phone = "+15550001111"
reach = ["console"]
consent = 2026-11-02

[channels.console]
plugin = "console"
"#;

impl Sandbox {
    pub fn new(channels: &str) -> Self {
        Self {
            project: crate::builder::Project::new(&format!("{PERSON}\n{channels}")),
        }
    }

    pub fn path(&self) -> &Path {
        self.project.path()
    }

    pub fn plugin(&self, name: &str, source: &str) {
        self.project.file(&format!("plugins/{name}"), source);
    }

    /// Runs `kithd send-test` with extra environment variables, off the async runtime.
    pub async fn send_test(&self, channel: &str, to: &str, env: &[(&str, &str)]) -> Output {
        self.project
            .kithd(&[
                "send-test",
                "plan.toml",
                "--plugins",
                "plugins",
                "--channel",
                channel,
                "--to",
                to,
                "--message",
                "Time for your 50 mg, Alex. Grüße ☀",
            ])
            .envs(env)
            .output_async()
            .await
    }
}
