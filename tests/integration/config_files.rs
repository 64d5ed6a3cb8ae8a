//! Every plan in `config/` must pass `kithd check`.

use crate::builder::Cmd;
use crate::support::root;

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
        Cmd::new(&dir, &["check", &name, "--plugins", "no-plugins-here"])
            .status(0)
            .stdout_has(&format!("{name}: ok ("))
            .run();
        checked += 1;
    }
    assert!(checked >= 1);
}
