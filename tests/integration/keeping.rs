//! The person's history is theirs, with the real binary: `export` holds what the ledger
//! holds (notes and consents included), `forget --all` leaves no answer text in the ledger
//! file's bytes, and `history_retention` prunes old history when the clock moves past it.

use std::time::Duration;

use crate::daemon::{Daemon, cron_in, project, receiver, wait_for, webhook};
use crate::support::{kithd, text};

const NOTE: &str = "slept badly, a note only for me";

/// A plan with a check-in due in two seconds, Sam (consenting) as a contact, and `extra`
/// at the top.
fn plan(sink: &str, extra: &str) -> String {
    let (_, cron) = cron_in(2);
    format!(
        "{extra}\n[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"me\"]\nconsent = 2026-11-01\n\n{}\n\
         [[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nexpect_reply_within = \"1h\"\nmessage = \"How are you?\"\n",
        webhook("me", &format!("{sink}/me"), "")
    )
}

/// Runs the daemon until the check-in arrived, answers it with a note, and stops.
async fn answered(dir: &std::path::Path, sink: &wiremock::MockServer) {
    let d = Daemon::start(dir, &[]);
    let got = wait_for(sink, "/me", 1, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    let out = kithd(
        dir,
        &[
            "ack",
            "mood",
            "--value",
            "3",
            "--note",
            NOTE,
            "--state-dir",
            "state",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
}

/// The ledger's bytes on disk, write-ahead log included.
fn ledger_bytes(dir: &std::path::Path) -> Vec<u8> {
    ["kithd.db", "kithd.db-wal"]
        .iter()
        .flat_map(|f| std::fs::read(dir.join("state").join(f)).unwrap_or_default())
        .collect()
}

fn holds(bytes: &[u8], needle: &str) -> bool {
    bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn export_holds_the_ledger_and_forget_leaves_no_trace() {
    let sink = receiver().await;
    let dir = project(&plan(&sink.uri(), ""));
    answered(dir.path(), &sink).await;
    let out = kithd(
        dir.path(),
        &[
            "export",
            "plan.toml",
            "--plugins",
            "plugins",
            "--state-dir",
            "state",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let export: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let history: Vec<serde_json::Value> = text(
        &kithd(
            dir.path(),
            &["history", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    )
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(export["deliveries"], serde_json::Value::Array(history));
    assert_eq!(export["answers"][0]["note"], NOTE);
    assert_eq!(export["answers"][0]["value"], "3");
    assert_eq!(export["plan"]["contacts"][0]["consent"], "2026-11-01");
    assert_eq!(export["plan"]["history_retention_days"], 400);
    // The note is in the file (so the check below can fail), and after forget it is not.
    assert!(holds(&ledger_bytes(dir.path()), NOTE), "the note is stored");
    dir.kithd(&["forget", "--all", "--state-dir", "state"])
        .stdout_has("erased 1 firings")
        .run();
    assert!(
        !holds(&ledger_bytes(dir.path()), NOTE),
        "the note's bytes are gone"
    );
    let export: serde_json::Value =
        serde_json::from_slice(&kithd(dir.path(), &["export", "--state-dir", "state"]).stdout)
            .unwrap();
    assert_eq!(export["deliveries"], serde_json::json!([]));
    assert_eq!(export["answers"], serde_json::json!([]));
    assert_eq!(export["deletions"].as_array().unwrap().len(), 1);
    assert_eq!(export["deletions"][0]["before"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn history_past_its_retention_is_pruned_when_the_clock_gets_there() {
    let sink = receiver().await;
    let dir = project(&plan(&sink.uri(), "history_retention = \"7d\""));
    answered(dir.path(), &sink).await;
    let history = || text(&kithd(dir.path(), &["history", "--state-dir", "state"]).stdout);
    assert!(history().contains("mood"), "{}", history());
    // Ten days on, the daemon's first pass prunes it.
    let later = (chrono::Utc::now() + chrono::Duration::days(10)).format("%Y-%m-%d %H:%M:%S");
    let d = Daemon::start_with(dir.path(), &[], Some(&later.to_string()));
    d.wait_log(
        "Pruned history older than the plan's history_retention.",
        Duration::from_secs(15),
    );
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert!(!history().contains("mood"), "{}", history());
    assert!(
        !holds(&ledger_bytes(dir.path()), NOTE),
        "pruned with secure_delete"
    );
}
