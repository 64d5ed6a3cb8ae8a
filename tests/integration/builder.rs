//! One way to run the binary in a test, in the style of `just`'s test builder: a project
//! (a plan and files in a temporary directory) → `kithd ARGS` in it with a clean
//! environment → the exit code, stdout and stderr asserted (exactly, or by the lines that
//! matter). Every command-line run in the suite goes through `Cmd`; daemons through
//! `crate::daemon::Daemon`, started in a `Project`.

#![allow(dead_code)]

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{bin, text};

/// A temporary project directory: `plan.toml` (0600, as the README installs it) and an
/// empty `plugins/`.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// A project whose plan is `plan`.
    pub fn new(plan: &str) -> Self {
        let p = Self::empty();
        p.file("plan.toml", plan);
        std::fs::set_permissions(p.path().join("plan.toml"), PermissionsExt::from_mode(0o600))
            .unwrap();
        p
    }

    /// A project with no plan yet.
    pub fn empty() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` to `rel` (creating directories), e.g. `plugins/mine.rhai`.
    pub fn file(&self, rel: &str, text: &str) -> &Self {
        let path = self.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, text).unwrap();
        self
    }

    /// `kithd ARGS` in this project.
    pub fn kithd(&self, args: &[&str]) -> Cmd {
        Cmd::new(self.path(), args)
    }

    /// `kithd COMMAND --state-dir state --plan PLAN --format json EXTRA…` (history,
    /// report) for one plan of a directory's daemon: its JSON lines.
    pub fn plan_json(&self, command: &str, plan: &str, extra: &[&str]) -> Vec<serde_json::Value> {
        let args = [
            &[
                command,
                "--state-dir",
                "state",
                "--plan",
                plan,
                "--format",
                "json",
            ][..],
            extra,
        ]
        .concat();
        let out = self.kithd(&args).status(0).run();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// How many of the first item's firings a plan's `report` counts as answered.
    pub fn answered(&self, plan: &str, extra: &[&str]) -> u64 {
        self.plan_json("report", plan, extra)[0]["items"][0]["answered"]
            .as_u64()
            .unwrap()
    }
}

/// What a stream must be.
enum Want {
    Exactly(String),
    Contains(Vec<String>),
}

/// One run of the binary: arguments, environment, and what it must print and exit with.
pub struct Cmd {
    dir: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    as_nobody: bool,
    status: Option<i32>,
    stdout: Option<Want>,
    stderr: Option<Want>,
}

impl Cmd {
    /// `kithd ARGS` in `dir`. The environment is the test's minus anything that would
    /// change what kithd reads: secrets (`KITHD_SECRET_*`), `CREDENTIALS_DIRECTORY`, and
    /// `HOME`/`XDG_CONFIG_HOME` (so no default path points into the user's home).
    pub fn new(dir: &Path, args: &[&str]) -> Self {
        Self {
            dir: dir.to_path_buf(),
            args: args.iter().map(OsString::from).collect(),
            env: Vec::new(),
            as_nobody: false,
            status: None,
            stdout: None,
            stderr: None,
        }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn env(mut self, k: impl Into<OsString>, v: impl Into<OsString>) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn envs<'a>(mut self, vars: impl IntoIterator<Item = &'a (&'a str, &'a str)>) -> Self {
        for (k, v) in vars {
            self.env.push(((*k).into(), (*v).into()));
        }
        self
    }

    /// Runs as `nobody` (through `setpriv`; the suite runs as root in CI).
    pub fn run_as_nobody(mut self) -> Self {
        self.as_nobody = true;
        self
    }

    pub fn status(mut self, code: i32) -> Self {
        self.status = Some(code);
        self
    }

    pub fn stdout(mut self, exactly: &str) -> Self {
        self.stdout = Some(Want::Exactly(exactly.into()));
        self
    }

    pub fn stderr(mut self, exactly: &str) -> Self {
        self.stderr = Some(Want::Exactly(exactly.into()));
        self
    }

    /// stdout must contain `needle` (may be given several times).
    pub fn stdout_has(mut self, needle: &str) -> Self {
        push(&mut self.stdout, needle);
        self
    }

    /// stderr must contain `needle` (may be given several times).
    pub fn stderr_has(mut self, needle: &str) -> Self {
        push(&mut self.stderr, needle);
        self
    }

    /// The command itself, for a test that needs to spawn it (a daemon).
    pub fn command(&self) -> Command {
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin()]);
            c
        } else {
            Command::new(bin())
        };
        cmd.args(&self.args)
            .current_dir(&self.dir)
            .env_remove("CREDENTIALS_DIRECTORY")
            .env("HOME", "/nonexistent-home")
            .env_remove("XDG_CONFIG_HOME");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("KITHD_SECRET_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs it and returns what happened, asserting nothing.
    pub fn output(&self) -> Output {
        self.command().output().expect("run kithd")
    }

    /// Runs it off the async runtime's workers (for tests that also serve peers).
    pub async fn output_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.output())
            .await
            .unwrap()
    }

    /// Runs it and asserts the exit code and streams that were asked for; on a mismatch
    /// the panic shows all three.
    pub fn run(&self) -> Output {
        let out = self.output();
        self.assert(&out);
        out
    }

    /// `run`, off the async runtime's workers.
    pub async fn run_async(self) -> Output {
        tokio::task::spawn_blocking(move || self.run())
            .await
            .unwrap()
    }

    fn assert(&self, out: &Output) {
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let show = || {
            format!(
                "kithd {:?}\nexit: {:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
                self.args,
                out.status.code()
            )
        };
        if let Some(code) = self.status {
            assert_eq!(out.status.code(), Some(code), "{}", show());
        }
        for (want, got, name) in [
            (&self.stdout, &stdout, "stdout"),
            (&self.stderr, &stderr, "stderr"),
        ] {
            match want {
                Some(Want::Exactly(w)) => {
                    assert!(got == w, "{name} differs; wanted\n{w}\n{}", show())
                }
                Some(Want::Contains(ns)) => {
                    for n in ns {
                        assert!(got.contains(n.as_str()), "{name} lacks {n:?}\n{}", show());
                    }
                }
                None => {}
            }
        }
    }
}

fn push(want: &mut Option<Want>, needle: &str) {
    match want {
        Some(Want::Contains(ns)) => ns.push(needle.into()),
        _ => *want = Some(Want::Contains(vec![needle.into()])),
    }
}
