//! A contact can stop kithd's messages, with the real binary: every message to a contact
//! ends with how to stop; a contact's STOP (here through `/inbound`) is recorded, answered,
//! shown in `status`, and no alert reaches them after it, though it goes to the others.

use std::time::Duration;

use crate::daemon::{
    Daemon, choose, cron_at, inbound, link_at, project, receiver, wait_for, webhook,
};
use crate::support::{kithd, text};

const INBOUND: &str = "inbound-secret-for-the-consent-test";

#[tokio::test(flavor = "multi_thread")]
async fn a_contacts_stop_ends_their_messages() {
    let sink = receiver().await;
    let t0 = (chrono::Utc::now() + chrono::Duration::seconds(3)).with_timezone(&chrono::Utc);
    let t0 = chrono::DurationRound::duration_trunc(t0, chrono::Duration::seconds(1)).unwrap();
    let at = |s: i64| cron_at(t0 + chrono::Duration::seconds(s));
    let plan = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"+4915100000001\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nphone = \"+4915100000002\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [contacts.kim]\nname = \"Kim\"\nrelation = \"peer\"\nreach = [\"kim\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:0\"\n\n{}{}{}\n\
         [[checkin]]\nid = \"mood\"\ncron = \"{}\"\nexpect_reply_within = \"2s\"\nescalate = [\"sam\"]\nmessage = \"How are you?\"\n\n\
         [[checkin]]\nid = \"later\"\ncron = \"{}\"\nexpect_reply_within = \"4s\"\nescalate = [\"kim\", \"sam\"]\nmessage = \"And now?\"\n",
        webhook("me", &format!("{}/me", sink.uri()), ""),
        webhook("sam", &format!("{}/sam", sink.uri()), ""),
        webhook("kim", &format!("{}/kim", sink.uri()), ""),
        at(0),
        at(2),
    );
    let dir = project(&plan);
    let env = [
        (
            "KITHD_SECRET_ANSWER_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        ),
        ("KITHD_SECRET_INBOUND_TOKEN", INBOUND),
    ];
    let d = Daemon::start(dir.path(), &env);
    let base = d.answer_base();
    // Sam's alert about the first check-in says how to stop.
    let sam = wait_for(&sink, "/sam", 1, Duration::from_secs(15)).await;
    assert_eq!(sam.len(), 1, "{}", d.logs());
    let alert = sam[0]["text"].as_str().unwrap();
    assert!(
        alert.contains("\n\nTo get no more messages from kithd: http://127.0.0.1:0/c/"),
        "{alert}"
    );
    // Sam says STOP (before the second check-in's alerts are due).
    let reply = inbound(&base, INBOUND, "+49 151 00000002", "Stop").await;
    assert_eq!(reply["stopped"], true, "{reply}");
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Asked to stop: sam (since ")
        .run();
    // The person is told, kindly.
    let t = std::time::Instant::now();
    while !crate::daemon::bodies(&sink, "/me").await.iter().any(|b| {
        b["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("sam asked kithd not to send them messages any more."))
    }) {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", d.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The second check-in goes unanswered: Kim is alerted, Sam is not.
    let kim = wait_for(&sink, "/kim", 1, Duration::from_secs(15)).await;
    assert_eq!(kim.len(), 1, "{}", d.logs());
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    assert_eq!(
        crate::daemon::bodies(&sink, "/sam").await.len(),
        1,
        "{logs}"
    );
    let history = text(
        &kithd(
            dir.path(),
            &["history", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    );
    let to_sam = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["recipient"] == "sam" && d["item"] == "later" && d["state"] == "sent")
        .count();
    assert_eq!(to_sam, 0, "{history}");
    // The alert Sam did get says which consent it relied on.
    assert!(
        history.lines().any(|l| l.contains("\"recipient\":\"sam\"")
            && l.contains("\"consent\":\"in the plan, 2026-11-01\"")),
        "{history}"
    );
    // Asking Sam again is possible, and only a new YES would count.
    invite_sam(&dir, &env);
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Invited, no answer yet: sam")
        .run();
}

/// A YES by SMS counts for an invited contact (and only for one).
#[tokio::test(flavor = "multi_thread")]
async fn an_invited_contacts_yes_by_sms_is_recorded() {
    let sink = receiver().await;
    let plan = format!(
        "invite = true\ninvite_message = \"Hello {{recipient}}, it's {{person}}. Would you be someone kithd tells?\"\n\n[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"+4915100000001\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nphone = \"+4915100000002\"\nreach = [\"me\"]\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:0\"\n\n{}\n\
         [[checkin]]\nid = \"mood\"\nat = \"09:00\"\nexpect_reply_within = \"1h\"\nescalate = [\"sam\"]\nmessage = \"How are you?\"\n",
        webhook("me", &format!("{}/me", sink.uri()), ""),
    );
    let dir = project(&plan);
    let env = [
        (
            "KITHD_SECRET_ANSWER_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        ),
        ("KITHD_SECRET_INBOUND_TOKEN", INBOUND),
    ];
    let d = Daemon::start(dir.path(), &env);
    let base = d.answer_base();
    let yes = || inbound(&base, INBOUND, "+4915100000002", "YES");
    // Not invited yet: a YES is nothing to answer.
    assert_eq!(yes().await["agreed"], serde_json::Value::Null);
    dir.kithd(&[
        "invite",
        "plan.toml",
        "sam",
        "--plugins",
        "plugins",
        "--state-dir",
        "state",
    ])
    .envs(&env)
    .run();
    assert_eq!(yes().await["agreed"], true);
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Said yes: sam (")
        .stdout_has("by sms")
        .run();
    // Later Sam uses the link from the invitation to stop.
    let invitation = wait_for(&sink, "/me", 1, Duration::from_secs(10)).await;
    let text = invitation[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with(
            "Hello Sam, it's Alex. Would you be someone kithd tells? You would get a short note"
        ),
        "{text}"
    );
    let link = link_at(text, "http://127.0.0.1:0/c/", &format!("{base}/c/"));
    let page = choose(&link, "stop").await;
    assert!(
        page.contains("You will get no more messages from kithd."),
        "{page}"
    );
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Asked to stop: sam (since ")
        .run();
    // The export holds what Sam said, with how.
    let export: serde_json::Value =
        serde_json::from_slice(&kithd(dir.path(), &["export", "--state-dir", "state"]).stdout)
            .unwrap();
    assert_eq!(export["consents"][0]["contact"], "sam");
    assert_eq!(export["consents"][0]["state"], "withdrawn");
    assert_eq!(export["consents"][0]["how"], "link");
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
}

/// An invited contact (`invite = true`, no `consent` date) is asked with `kithd invite`; no
/// alert goes to them until they say YES, and after it their alerts go out.
#[tokio::test(flavor = "multi_thread")]
async fn an_invited_contact_is_alerted_only_after_their_yes() {
    let sink = receiver().await;
    let t0 = chrono::DurationRound::duration_trunc(
        chrono::Utc::now() + chrono::Duration::seconds(4),
        chrono::Duration::seconds(1),
    )
    .unwrap();
    let at = |s: i64| cron_at(t0 + chrono::Duration::seconds(s));
    let plan = format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"+4915100000001\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nphone = \"+4915100000002\"\nreach = [\"sam\"]\ninvite = true\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"http://127.0.0.1:0\"\n\n{}{}\n\
         [[checkin]]\nid = \"first\"\ncron = \"{}\"\nexpect_reply_within = \"2s\"\nescalate = [\"sam\"]\nmessage = \"How are you?\"\n\n\
         [[checkin]]\nid = \"second\"\ncron = \"{}\"\nexpect_reply_within = \"2s\"\nescalate = [\"sam\"]\nmessage = \"And now?\"\n",
        webhook("me", &format!("{}/me", sink.uri()), ""),
        webhook("sam", &format!("{}/sam", sink.uri()), ""),
        at(0),
        at(8),
    );
    let dir = project(&plan);
    dir.kithd(&["check", "plan.toml", "--plugins", "plugins", "--offline"])
        .stderr_has(
            "contact `sam` is to be asked first: no alert goes to them until they reply YES",
        )
        .run();
    let env = [
        (
            "KITHD_SECRET_ANSWER_KEY",
            "0123456789abcdef0123456789abcdef-test-key",
        ),
        ("KITHD_SECRET_INBOUND_TOKEN", INBOUND),
    ];
    let d = Daemon::start(dir.path(), &env);
    let base = d.answer_base();
    invite_sam(&dir, &env);
    let invitation = wait_for(&sink, "/sam", 1, Duration::from_secs(10)).await;
    let text = invitation[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Hi Sam, Alex uses kithd")
            && text.contains("Please answer here: http://127.0.0.1:0/c/"),
        "{text}"
    );
    let link = link_at(text, "http://127.0.0.1:0/c/", &format!("{base}/c/"));
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Invited, no answer yet: sam")
        .run();
    // The first check-in goes unanswered: Sam hasn't said yes, so the alert is cancelled.
    let history = || -> Vec<serde_json::Value> {
        text_lines(
            &kithd(
                dir.path(),
                &["history", "--state-dir", "state", "--format", "json"],
            )
            .stdout,
        )
    };
    let t = std::time::Instant::now();
    while !history()
        .iter()
        .any(|d| d["recipient"] == "sam" && d["last_error"] == "the contact has not agreed yet")
    {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "{:#?}\n{}",
            history(),
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Sam says yes on their page; the second check-in's alert reaches them.
    let http = reqwest::Client::new();
    let page = http.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Alex uses kithd") && page.contains("value=\"yes\""),
        "{page}"
    );
    let page = choose(&link, "yes").await;
    assert!(
        page.contains("You will be told only when it matters"),
        "{page}"
    );
    dir.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Said yes: sam (")
        .stdout_has("by link")
        .run();
    let sam = wait_for(&sink, "/sam", 2, Duration::from_secs(20)).await;
    assert_eq!(sam.len(), 2, "{}", d.logs());
    assert!(
        sam[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Alex hasn't answered a check-in")
    );
    let (code, _, logs) = d.stop();
    let report = crate::support::text(
        &kithd(
            dir.path(),
            &["report", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    );
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let consent = report["contact_messages"][0]["consent"]
        .as_str()
        .unwrap_or_default();
    assert!(consent.starts_with("yes by link, "), "{report}");
    assert_eq!(code, Some(0), "{logs}");
}

fn text_lines(out: &[u8]) -> Vec<serde_json::Value> {
    text(out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `kithd invite plan.toml sam` in `dir`, which must succeed.
fn invite_sam(dir: &crate::builder::Project, env: &[(&str, &str)]) {
    dir.kithd(&[
        "invite",
        "plan.toml",
        "sam",
        "--plugins",
        "plugins",
        "--state-dir",
        "state",
    ])
    .envs(env)
    .stdout_has("invited Sam through `sam`")
    .run();
}
