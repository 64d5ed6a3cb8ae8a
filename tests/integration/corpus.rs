//! The malformed-plan corpus: every `tests/corpus/*.toml` must fail `kithd check` with exit
//! 65 and exactly the messages, positions and carets in its `.expected` file.

use crate::support::{golden, kithd, root, text};

#[test]
fn malformed_plans_give_exact_diagnostics() {
    let dir = root().join("tests/corpus");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    assert!(
        names.len() >= 30,
        "the corpus has only {} plans",
        names.len()
    );
    let mut failures = Vec::new();
    // Each plan is checked from a private copy (0600), so the output doesn't depend on the
    // umask of the checkout (a plan others can read gets a warning of its own).
    let private = tempfile::tempdir().unwrap();
    for name in &names {
        let copy = private.path().join(name);
        std::fs::copy(dir.join(name), &copy).unwrap();
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let out = kithd(
            private.path(),
            &["check", name, "--plugins", "no-plugins-here"],
        );
        let stderr = text(&out.stderr);
        if out.status.code() != Some(65) {
            failures.push(format!(
                "{name}: exit {:?}, expected 65\n{stderr}",
                out.status.code()
            ));
        }
        if stderr.contains("panicked") {
            failures.push(format!("{name}: panicked\n{stderr}"));
        }
        if !text(&out.stdout).is_empty() {
            failures.push(format!("{name}: wrote to stdout"));
        }
        let expected = dir.join(name.replace(".toml", ".expected"));
        if let Err(e) = golden(&expected, &stderr) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn unreadable_plan_exits_66() {
    let dir = root();
    let out = kithd(&dir, &["check", "tests/corpus/does-not-exist.toml"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        text(&out.stderr).starts_with("error: can't read plan `tests/corpus/does-not-exist.toml`")
    );
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("bin.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let out = kithd(tmp.path(), &["check", "bin.toml"]);
    assert_eq!(out.status.code(), Some(66));
    assert!(
        text(&out.stderr).contains("is not UTF-8"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn random_mutations_never_panic() {
    // A cheap fuzz: byte-level mutations of the example plan must never crash `check`.
    let base = std::fs::read(root().join("config/example.toml")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let junk = b"[]{}=\"'#\n,.:-x0 \\\xc3";
    for round in 0..40 {
        let mut data = base.clone();
        for _ in 0..(1 + next() % 6) {
            let at = (next() as usize) % data.len();
            match next() % 3 {
                0 => data[at] = junk[(next() as usize) % junk.len()],
                1 => {
                    data.remove(at);
                }
                _ => data.insert(at, junk[(next() as usize) % junk.len()]),
            }
        }
        let name = format!("m{round}.toml");
        std::fs::write(tmp.path().join(&name), &data).unwrap();
        let out = kithd(tmp.path(), &["check", &name]);
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 65 | 66)),
            "round {round}: exit {code:?}\n{}",
            text(&out.stderr)
        );
    }
}
