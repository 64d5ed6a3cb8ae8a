//! Answers the person asked to be heard (`alert_on`), with the real binary: a check-in
//! answered with a low mood, and a dose answered `skipped` by SMS, alert the contact at once
//! with the person's `low_message` and give the person their own `crisis_text` back (on
//! the page, in the SMS reply); a good mood cancels the escalation as before.

use std::time::Duration;

use crate::daemon::{Daemon, choose, cron_in, inbound, project, receiver, wait_for, webhook};

const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";
const INBOUND: &str = "inbound-secret-for-the-heard-test-1";
const PUBLIC: &str = "http://127.0.0.1:0";
const CRISIS: &str = "Call Sam on +49 151 0000002 & the helpline on 0800 111 0 111.";

#[tokio::test(flavor = "multi_thread")]
async fn a_low_answer_is_heard_and_a_good_one_cancels() {
    let sink = receiver().await;
    let (t, cron) = cron_in(2);
    let policy = "expect_reply_within = \"1h\"\nescalate = [\"sam\"]";
    let plan = format!(
        "crisis_text = \"{CRISIS}\"\n\n\
         [person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"+4915100000001\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n{}{}\n\
         [[checkin]]\nid = \"low\"\ncron = \"{cron}\"\n{policy}\nalert_on = \"mood <= 2\"\nmessage = \"How are you? {{answer_url}}\"\n\n\
         [[checkin]]\nid = \"fine\"\ncron = \"{cron}\"\n{policy}\nalert_on = \"mood <= 2\"\nmessage = \"And now? {{answer_url}}\"\n\n\
         [[medication]]\nid = \"meds\"\nname = \"x\"\ncron = \"{cron}\"\nconfirm_within = \"1h\"\nnag = \"10m x2\"\nescalate = [\"sam\"]\nalert_on = \"skipped\"\n\
         low_message = \"{{person}} skipped a dose. Maybe call?\"\nmessage = \"Dose?\"\n",
        webhook("me", &format!("{}/me", sink.uri()), ""),
        webhook("sam", &format!("{}/sam", sink.uri()), ""),
    );
    let dir = project(&plan);
    let env = [
        ("KITHD_SECRET_ANSWER_KEY", KEY),
        ("KITHD_SECRET_INBOUND_TOKEN", INBOUND),
    ];
    let d = Daemon::start(dir.path(), &env);
    let base = d.answer_base();
    let me = wait_for(&sink, "/me", 3, Duration::from_secs(15)).await;
    assert_eq!(me.len(), 3, "{}", d.logs());
    let link = |text: &str| {
        let start = text.find(PUBLIC).unwrap();
        text[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .replacen(PUBLIC, &base, 1)
    };
    let text_of = |prefix: &str| {
        me.iter()
            .map(|b| b["text"].as_str().unwrap().to_string())
            .find(|t| t.starts_with(prefix))
            .unwrap()
    };
    let http = reqwest::Client::new();
    // The question page offers the person's own words too.
    let page = http
        .get(link(&text_of("How are you?")))
        .send()
        .await
        .unwrap();
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Call Sam on +49 151 0000002 &amp; the helpline")
    );
    // A good mood first: the escalation is cancelled, as without alert_on.
    let fine = choose(&link(&text_of("And now?")), "4").await;
    assert!(
        fine.contains("Your answer is saved.") && !fine.contains("helpline"),
        "{fine}"
    );
    // A low one: Sam is told at once, and the person gets their own words back.
    let low = choose(&link(&text_of("How are you?")), "1").await;
    assert!(low.contains("will be told, as you asked"), "{low}");
    assert!(
        low.contains("&amp; the helpline on 0800 111 0 111."),
        "{low}"
    );
    let sam = wait_for(&sink, "/sam", 1, Duration::from_secs(10)).await;
    assert_eq!(sam.len(), 1, "{}", d.logs());
    let alert = sam[0]["text"].as_str().unwrap();
    assert!(alert.contains("when a check-in goes less well"), "{alert}");
    assert!(
        alert.contains(&t.format("%H:%M").to_string()) && !alert.contains("mood"),
        "the time, no mood value: {alert}"
    );
    // A dose skipped by SMS: the reply carries the crisis text; Sam gets the plan's words.
    let reply = inbound(&base, INBOUND, "+4915100000001", "skipped").await;
    assert_eq!(reply["heard"], true, "{reply}");
    assert_eq!(reply["reply"], CRISIS, "{reply}");
    let sam = wait_for(&sink, "/sam", 2, Duration::from_secs(10)).await;
    assert!(sam[1]["text"].as_str().unwrap().starts_with(
        "Alex skipped a dose. Maybe call?\n\nTo get no more messages from kithd: http://"
    ));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
    // Nothing else went to Sam: the good mood's escalation and the dose's nags are gone.
    let history = crate::support::text(
        &crate::support::kithd(
            dir.path(),
            &["history", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    );
    let alerts: Vec<serde_json::Value> = history
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|d| d["recipient"] == "sam")
        .collect();
    assert_eq!(alerts.len(), 2, "{alerts:#?}");
    assert!(alerts.iter().all(|a| {
        a["purpose"]
            .as_str()
            .unwrap()
            .starts_with("escalate:heard:")
    }));
}
