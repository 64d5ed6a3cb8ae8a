//! The state directory nobody can subvert (issue 10, section 4), with the real binary: a
//! directory others can write is tightened (ours) or refused (someone else's), planted
//! symlinks are refused or not followed, a read-only directory is said to be read-only (and
//! still readable by `status` and `history`), and no lock file to delete lets a second
//! daemon in. Some cases need root (chown, another user): CI runs as root.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use crate::builder::Cmd;
use crate::daemon::{Daemon, project};
use crate::support::text;

const PLAN: &str = "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"console\"]\n[channels.console]\nplugin = \"console\"\n";

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn run_once(dir: &Path, as_nobody: bool, args: &[&str]) -> Output {
    let cmd = Cmd::new(dir, args);
    if as_nobody { cmd.run_as_nobody() } else { cmd }.output()
}

/// Starts `run` and returns its exit once it stops by itself, or stops it after `Ready.`.
fn start_and_stop(dir: &Path) -> (Option<i32>, String) {
    let d = Daemon::start(dir, &[]);
    for _ in 0..100 {
        if d.logs().contains("Ready.") {
            let (code, _, logs) = d.stop();
            return (code, logs);
        }
        if d.logs().contains("not starting") {
            return d.wait_exit(Duration::from_secs(5));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("neither ready nor refused:\n{}", d.logs());
}

#[test]
fn a_state_directory_others_can_write_is_tightened_or_refused() {
    let dir = project(PLAN);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("was writable by others (mode 777); it is now 0700"),
        "{logs}"
    );
    assert_eq!(std::fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
    if !is_root() {
        return; // chown needs root; CI runs as root
    }
    // Someone else's world-writable directory: refused.
    let dir = project(PLAN);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(73), "{logs}");
    assert!(
        logs.contains("is not safe to use: it is writable by others"),
        "{logs}"
    );
}

#[test]
fn the_state_directory_itself_may_be_a_symlink() {
    // As systemd's DynamicUser= makes /var/lib/kithd a link to private/kithd.
    let dir = project(PLAN);
    let real = dir.path().join("private-state");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&real, dir.path().join("state")).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(0), "{logs}");
    assert!(real.join("kithd.db").exists());
}

#[test]
fn planted_symlinks_are_refused_or_not_followed() {
    let dir = project(PLAN);
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "precious").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("kithd.db")).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(73), "{logs}");
    assert!(logs.contains("it is a symbolic link"), "{logs}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(std::fs::metadata(&victim).unwrap().mode() & 0o777, 0o644);
    // A symlink where kithd writes `next.json`'s temporary file is not followed.
    std::fs::remove_file(state.join("kithd.db")).unwrap();
    std::os::unix::fs::symlink(&victim, state.join("next.json.tmp")).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(0), "{logs}");
    assert!(
        logs.contains("Could not publish the next firings"),
        "{logs}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // And a symlinked write-ahead log is refused.
    std::os::unix::fs::symlink(&victim, state.join("kithd.db-wal")).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(73), "{logs}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

#[test]
fn a_read_only_state_directory_is_said_to_be_read_only() {
    if !is_root() {
        return; // needs another user to make a directory read-only; CI runs as root
    }
    let dir = project(PLAN);
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let plan = dir.path().join("plan.toml");
    std::fs::set_permissions(&plan, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, logs) = start_and_stop(dir.path());
    assert_eq!(code, Some(0), "{logs}");
    let state = dir.path().join("state");
    for entry in std::fs::read_dir(&state).unwrap() {
        std::os::unix::fs::chown(entry.unwrap().path(), Some(65534), Some(65534)).unwrap();
    }
    std::os::unix::fs::chown(&state, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o500)).unwrap();
    let args = [
        "run",
        "plan.toml",
        "--state-dir",
        "state",
        "--plugins",
        "/nonexistent",
    ];
    let out = run_once(dir.path(), true, &args);
    assert_eq!(out.status.code(), Some(73), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("is read-only") && !err.contains("damaged"),
        "{err}"
    );
    let status = run_once(dir.path(), true, &["status", "--state-dir", "state"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status.stderr));
    assert!(
        text(&status.stdout).starts_with("Health: healthy"),
        "{}",
        text(&status.stdout)
    );
    let history = run_once(dir.path(), true, &["history", "--state-dir", "state"]);
    assert_eq!(history.status.code(), Some(0), "{}", text(&history.stderr));
}

#[test]
fn no_lock_file_to_delete_lets_a_second_daemon_in() {
    let dir = project(PLAN);
    let first = Daemon::start(dir.path(), &[]);
    first.wait_log("Ready.", Duration::from_secs(10));
    // An old-style lock file, deleted or not, decides nothing: the ledger itself is locked.
    let _ = std::fs::remove_file(dir.path().join("state/kithd.lock"));
    let second = run_once(
        dir.path(),
        false,
        &[
            "run",
            "plan.toml",
            "--state-dir",
            "state",
            "--plugins",
            "plugins",
        ],
    );
    assert_eq!(second.status.code(), Some(69), "{}", text(&second.stderr));
    assert!(text(&second.stderr).contains("another kithd is already running"));
    let (code, _, _) = first.stop();
    assert_eq!(code, Some(0));
}

#[test]
fn run_and_status_share_the_default_state_directory() {
    // As an ordinary user (nobody) whose only hint is $XDG_STATE_HOME: `run` creates the
    // ledger there and `status`, given nothing, finds it.
    let dir = project(PLAN);
    let xdg = dir.path().join("xdg");
    std::fs::create_dir(&xdg).unwrap();
    for p in [dir.path(), xdg.as_path()] {
        std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(
        dir.path().join("plan.toml"),
        PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let log = dir.path().join("run.log");
    let mut run = Cmd::new(dir.path(), &["run", "plan.toml", "--plugins", "plugins"])
        .env("XDG_STATE_HOME", &xdg)
        .env("RUST_LOG", "info")
        .run_as_nobody()
        .command();
    run.env_remove("HOME")
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = run.spawn().unwrap();
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("Ready.")
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(xdg.join("kithd/kithd.db").exists());
    Cmd::new(dir.path(), &["status"])
        .env("XDG_STATE_HOME", &xdg)
        .run_as_nobody()
        .status(0)
        .stdout_has("Health: healthy\n")
        .run();
    // Somewhere else, it says where it looked and how to point it at run's ledger.
    Cmd::new(dir.path(), &["status"])
        .env("XDG_STATE_HOME", dir.path().join("elsewhere"))
        .run_as_nobody()
        .status(66)
        .stderr_has("kithd looked in ")
        .stderr_has("elsewhere/kithd (from $XDG_STATE_HOME); give the state directory `kithd run` uses with --state-dir, or set KITHD_STATE_DIR")
        .run();
    let _ = child.kill();
    let _ = child.wait();
}
