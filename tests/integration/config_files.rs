//! Every plan in `config/` must pass `kithd check`.

use crate::support::{kithd, root, text};

#[test]
fn every_config_plan_is_valid() {
    let dir = root().join("config");
    let mut checked = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().and_then(|x| x.to_str()) != Some("toml") {
            continue;
        }
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let out = kithd(&dir, &["check", &name, "--plugins", "no-plugins-here"]);
        assert_eq!(out.status.code(), Some(0), "{name}:\n{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with(&format!("{name}: ok (")));
        checked += 1;
    }
    assert!(checked >= 1);
}
