//! `kithd init` through the real binary: from flags (the plan passes `check --offline`, is
//! 0600, is never overwritten without `--force`), and typed at a pseudo-terminal.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use crate::builder::{Cmd, Project};
use crate::support::{bin, root, text};

#[test]
fn init_from_flags_writes_a_plan_that_checks() {
    let p = Project::empty();
    p.kithd(&[
        "init",
        "plan.toml",
        "--name",
        "Alex",
        "--timezone",
        "Europe/Lisbon",
        "--email",
        "alex@example.org",
        "--checkin",
        "09:00",
        "--medication",
        "sertraline 50 mg @ 20:00",
        "--contact",
        "sam Sam Lee +4915100000002",
    ])
    .status(0)
    .stderr("")
    .stdout_has("Wrote ")
    .stdout_has("smtp_password)")
    .stdout_has("twilio_token)")
    .stdout_has("medication  sertraline  → self via mail\n")
    .stdout_has("systemctl --user enable --now kithd\n")
    .run();
    let plan = p.path().join("plan.toml");
    let mode = std::fs::metadata(&plan).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let written = std::fs::read_to_string(&plan).unwrap();
    assert!(
        written.contains("[contacts.sam]\nname = \"Sam Lee\""),
        "{written}"
    );
    assert!(written.contains("# consent = YYYY-MM-DD\n"), "{written}");
    p.kithd(&["check", "plan.toml", "--offline", "--plugins", "plugins"])
        .status(0)
        .stdout_has("plan.toml: ok (2 items, 1 contact, 2 channels, 0 warnings)")
        .run();
    // Without the secrets it names, `check` says which are missing.
    p.kithd(&["check", "plan.toml", "--plugins", "plugins"])
        .status(65)
        .stderr_has(
            "error: secret `smtp_password` for `password` of channel `mail` is not available",
        )
        .run();
    // Never overwritten without --force.
    p.kithd(&[
        "init",
        "plan.toml",
        "--name",
        "Robin",
        "--email",
        "r@example.org",
    ])
    .status(73)
    .stderr(
        "error: `plan.toml` exists; kithd never overwrites a plan (give --force to replace it)\n",
    )
    .run();
    assert_eq!(std::fs::read_to_string(&plan).unwrap(), written);
    p.kithd(&[
        "init",
        "plan.toml",
        "--name",
        "Robin",
        "--timezone",
        "UTC",
        "--ntfy-topic",
        "robin-x",
        "--force",
    ])
    .status(0)
    .run();
    assert!(
        std::fs::read_to_string(&plan)
            .unwrap()
            .contains("name = \"Robin\"")
    );
    // Answers that don't make a plan are refused, nothing written.
    p.kithd(&[
        "init",
        "other.toml",
        "--name",
        "Kim",
        "--timezone",
        "Mars/Olympus",
        "--email",
        "k@example.org",
    ])
    .status(64)
    .stderr("error: `Mars/Olympus` is not a time zone (e.g. Europe/Berlin)\n")
    .run();
    assert!(!p.path().join("other.toml").exists());
}

#[test]
fn init_asks_on_a_terminal() {
    let p = Project::empty();
    let answers = p.path().join("answers.txt");
    // Name, zone (the default taken), reach by SMS and the number, a check-in at 08:30,
    // one medication then done, and no trusted person.
    std::fs::write(
        &answers,
        "Alex\n\nsms\n+4915100000001\n08:30\nlithium 400 mg @ 21:00\n\n\n",
    )
    .unwrap();
    let out = Command::new("/usr/bin/python3")
        .arg(root().join("tests/peers/pty_run.py"))
        .arg(&answers)
        .arg("--")
        .arg(bin())
        .args(["init", "plan.toml"])
        .current_dir(p.path())
        .env("TZ", "America/New_York")
        .env("HOME", "/nonexistent-home")
        .output()
        .unwrap();
    let screen = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}{}", text(&out.stderr));
    assert!(screen.contains("Time zone? [America/New_York]"), "{screen}");
    assert!(screen.contains("They must agree first"), "{screen}");
    assert!(
        screen.contains("medication  lithium  → self via sms"),
        "{screen}"
    );
    let written = std::fs::read_to_string(p.path().join("plan.toml")).unwrap();
    assert!(
        written.contains("timezone = \"America/New_York\""),
        "{written}"
    );
    assert!(written.contains("phone = \"+4915100000001\""), "{written}");
    assert!(written.contains("at = \"08:30\""), "{written}");
    Cmd::new(
        p.path(),
        &["check", "plan.toml", "--offline", "--plugins", "plugins"],
    )
    .status(0)
    .run();
}
