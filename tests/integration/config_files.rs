//! Every plan in `config/` passes `kithd check`, and every example in `config/examples/`
//! (which name secrets this machine doesn't have) passes `check --offline` and previews a
//! week of firings.

use crate::builder::Cmd;
use crate::support::root;

fn plans(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("toml"))
        .map(|p| p.file_name().unwrap().to_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn every_config_plan_is_valid() {
    let dir = root().join("config");
    let names = plans(&dir);
    assert!(!names.is_empty());
    for name in names {
        Cmd::new(&dir, &["check", &name, "--plugins", "no-plugins-here"])
            .status(0)
            .stdout_has(&format!("{name}: ok ("))
            .run();
    }
}

#[test]
fn every_example_checks_and_previews() {
    let dir = root().join("config/examples");
    let names = plans(&dir);
    assert_eq!(
        names,
        [
            "email-minimal.toml",
            "friend-by-sms.toml",
            "medication-twice-daily.toml",
            "ntfy-push.toml",
            "peer-group-webhook.toml",
            "weekly-therapy.toml"
        ]
    );
    for name in names {
        let args = ["check", &name, "--offline", "--plugins", "no-plugins-here"];
        Cmd::new(&dir, &args)
            .status(0)
            .stdout_has(&format!("{name}: ok ("))
            .stdout_has("; secrets not checked\n")
            .run();
        let preview = [
            "preview",
            &name,
            "--plugins",
            "no-plugins-here",
            "--from",
            "2027-01-04T00:00",
            "--days",
            "8",
        ];
        let out = Cmd::new(&dir, &preview).status(0).stderr("").run();
        assert!(
            String::from_utf8_lossy(&out.stdout).lines().count() >= 2,
            "{name} fires less than twice in a week"
        );
    }
}
