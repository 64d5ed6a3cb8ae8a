//! The shipped units (one plan, a directory of plans, the user's) pass `systemd-analyze verify` with empty stderr, the man pages their
//! `Documentation=` names present (as the package installs them), and the system unit's
//! offline security exposure is at most 2.0.

use std::process::Command;

use crate::support::{bin, root, text};

/// The man pages `kithd manpages` writes (what the package installs), for `man` to find.
fn man_dir(dir: &std::path::Path) -> std::path::PathBuf {
    let man = dir.join("man");
    let out = Command::new(bin())
        .arg("manpages")
        .arg(&man)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    man
}

fn unit_copy(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(root().join("systemd").join(name))
        .unwrap()
        .replace("/usr/bin/kithd", bin());
    // Named as installed (the user unit installs as kithd.service).
    let path = dir.path().join(name.replace("kithd-user", "kithd"));
    std::fs::write(&path, unit).unwrap();
    (dir, path)
}

#[test]
fn system_unit_verifies_cleanly_and_is_hardened() {
    system_unit("kithd.service");
}

#[test]
fn directory_unit_verifies_cleanly_and_is_hardened() {
    system_unit("kithd-plans.service");
}

fn system_unit(name: &str) {
    let (dir, path) = unit_copy(name);
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("MANPATH", man_dir(dir.path()))
        .output()
        .expect("systemd-analyze");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "verify printed warnings");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true"])
        .arg(&path)
        .output()
        .unwrap();
    let report = text(&out.stdout);
    let line = report
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .expect("an exposure line");
    let score: f64 = line
        .split(": ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(score <= 2.0, "{line}");
}

#[test]
fn user_unit_verifies_cleanly() {
    let (dir, path) = unit_copy("kithd-user.service");
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["--user", "verify"])
        .arg(&path)
        .env("XDG_RUNTIME_DIR", &run)
        .env("MANPATH", man_dir(dir.path()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
}
