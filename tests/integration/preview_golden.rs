//! Golden tests of `kithd preview`: each `tests/fixtures/NN-name/` holds `plan.toml`, the
//! `args` after the plan path, and the exact `expected.txt`. Covers DST gaps and folds in
//! Europe/Berlin, America/New_York and Australia/Sydney, quiet hours, appointments and JSON.

use crate::support::{golden, kithd, root, text};

#[test]
fn preview_matches_golden_files() {
    let dir = root().join("tests/fixtures");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("plan.toml").exists())
        .collect();
    cases.sort();
    assert!(cases.len() >= 6);
    let mut failures = Vec::new();
    for case in cases {
        let args = std::fs::read_to_string(case.join("args")).unwrap();
        let mut argv = vec!["preview", "plan.toml", "--plugins", "none"];
        argv.extend(args.split_whitespace());
        let out = kithd(&case, &argv);
        if out.status.code() != Some(0) {
            failures.push(format!(
                "{}: exit {:?}: {}",
                case.display(),
                out.status.code(),
                text(&out.stderr)
            ));
            continue;
        }
        if let Err(e) = golden(&case.join("expected.txt"), &text(&out.stdout)) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn preview_json_lines_carry_the_contract_fields() {
    let case = root().join("tests/fixtures/06-json");
    let out = kithd(
        &case,
        &[
            "preview",
            "plan.toml",
            "--from",
            "2026-11-30T00:00:00+01:00",
            "--count",
            "4",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for l in &lines {
        for key in ["at", "item", "kind", "to", "channels"] {
            assert!(l.get(key).is_some(), "{key} missing in {l}");
        }
        chrono::DateTime::parse_from_rfc3339(l["at"].as_str().unwrap()).unwrap();
    }
    assert_eq!(lines[0]["item"], "dentist");
}

#[test]
fn preview_rejects_a_bad_from() {
    let case = root().join("tests/fixtures/06-json");
    let out = kithd(&case, &["preview", "plan.toml", "--from", "next tuesday"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("can't read `--from next tuesday`"));
}
