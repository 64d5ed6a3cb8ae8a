//! Check-ins that are answered, with the real binary: the whole chain (check-in → no answer
//! → nag → escalation → answer through the signed link → all-clear), a dose answered with
//! `kithd ack` before its deadline (no escalation), consent and `never_contact`, a restart
//! in the middle of an escalation, and the answer server's security.

use std::time::Duration;

use serde_json::Value;

use crate::daemon::{
    Daemon, bodies, canary, cron_in, project, receiver, wait_canary, wait_for, webhook,
};
use crate::support::{kithd, text};

const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";

/// Where the plans in these tests say links point: the server listens on port 0 (the
/// system picks a free one) and `link_in` points a link at the address it reported.
const PUBLIC: &str = "http://127.0.0.1:0";

/// A plan: Alex reached at /me, Sam and Kim (consenting) at /sam and /kim.
fn plan_text(uri: &str, extra_top: &str, items: &str) -> String {
    format!(
        "{extra_top}\n[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nphone = \"+4915100000001\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [contacts.kim]\nname = \"Kim\"\nrelation = \"peer\"\nreach = [\"kim\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n{}{}{}\n{items}",
        webhook("me", &format!("{uri}/me"), ""),
        webhook("sam", &format!("{uri}/sam"), ""),
        webhook("kim", &format!("{uri}/kim"), ""),
    )
}

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("KITHD_SECRET_ANSWER_KEY", KEY),
        (
            "KITHD_SECRET_INBOUND_TOKEN",
            "inbound-secret-1-for-the-answer-test",
        ),
    ]
}

/// The answer link in a message, pointed at the daemon's answer server `base`.
fn link_in(text: &str, base: &str) -> String {
    let start = text.find(PUBLIC).expect("an answer link in the text");
    let link = text[start..].split_whitespace().next().unwrap();
    link.replacen(PUBLIC, base, 1)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_whole_chain_nag_escalation_answer_all_clear() {
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!(
            "[[checkin]]\nid = \"evening\"\ncron = \"{cron}\"\nexpect_reply_within = \"5s\"\nnag = \"2s x1\"\nescalate = [\"sam\"]\nmessage = \"How are you, {{person}}? {{answer_url}}\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &env());
    d.wait_log("Answer server listening.", Duration::from_secs(10));
    // The check-in, then the nag, each with its own link.
    let me = wait_for(&server, "/me", 2, Duration::from_secs(10)).await;
    assert_eq!(me.len(), 2, "{}", d.logs());
    assert!(
        me[0]["text"]
            .as_str()
            .unwrap()
            .starts_with("How are you, Alex? http://127.0.0.1:0/a/")
    );
    assert!(
        me[1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Reminder: How are you, Alex? http://")
    );
    // No answer within 5 s: Sam is alerted, with nothing about health.
    let sam = wait_for(&server, "/sam", 1, Duration::from_secs(10)).await;
    assert_eq!(sam.len(), 1, "{}", d.logs());
    let alert = sam[0]["text"].as_str().unwrap();
    assert!(
        alert.starts_with(
            &"Alex hasn't answered a check-in from kithd since 00:00. You agreed to be told: maybe reach out to them?\n\n\
              To get no more messages from kithd: http://127.0.0.1:0/c/"
                .replace("00:00", &me[0]["scheduled"].as_str().unwrap()[11..16])
        ),
        "{alert}"
    );
    assert_eq!(sam[0]["item"], "");
    assert_eq!(sam[0]["kind"], "escalate");
    assert_eq!(sam[0]["title"], "A note from kithd");

    // Answer through the link: GET shows choices and records nothing; POST records.
    let link = link_in(me[0]["text"].as_str().unwrap(), &d.answer_base());
    let http = reqwest::Client::new();
    let page = http.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<button class=\"primary\" name=\"value\" value=\"3\">3</button>")
            && html.contains("<h1>How are you, Alex?</h1>")
            && !html.contains("evening"),
        "{html}"
    );
    let status = text(
        &kithd(
            dir.path(),
            &["report", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    );
    assert!(
        status.contains("\"answered\":0"),
        "a GET must not answer: {status}"
    );
    let posted = http
        .post(&link)
        .form(&[("value", "3")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    let said = posted.text().await.unwrap();
    assert!(
        said.contains("Sam will hear that you have answered.") && !said.contains("won't"),
        "{said}"
    );
    // The late answer sends an all-clear to Sam.
    let sam = wait_for(&server, "/sam", 2, Duration::from_secs(10)).await;
    assert_eq!(sam.len(), 2, "{}", d.logs());
    assert!(sam[1]["text"].as_str().unwrap().starts_with(
        "All clear: Alex has answered now. Thank you for being there.\n\n\
             To get no more messages from kithd: http://127.0.0.1:0/c/"
    ));
    // The link is single-use, the answer final.
    assert_eq!(
        http.post(&link)
            .form(&[("value", "4")])
            .send()
            .await
            .unwrap()
            .status(),
        410
    );
    assert_eq!(http.get(&link).send().await.unwrap().status(), 410);
    let report: Value = serde_json::from_str(&text(
        &kithd(
            dir.path(),
            &["report", "--state-dir", "state", "--format", "json"],
        )
        .stdout,
    ))
    .unwrap();
    // History says what each line was, and the answer beside the check-in it answered.
    let history = text(&kithd(dir.path(), &["history", "--state-dir", "state"]).stdout);
    for want in [
        "evening          (check-in) → self via me  sent",
        "evening          (nudge) → self via me  sent",
        "evening          (alert to a contact) → sam (consent: in the plan, 2026-11-01) via sam  sent",
        "evening          (all-clear to a contact) → sam (consent: in the plan, 2026-11-01) via sam  sent",
        "; answered 3 (late)",
    ] {
        assert!(history.contains(want), "{want:?} in\n{history}");
    }
    assert_eq!(report["escalations_sent"], 1);
    assert_eq!(report["all_clears_sent"], 1);
    assert_eq!(report["items"][0]["answered"], 1);
    assert_eq!(report["items"][0]["late"], 1);
    assert_eq!(report["items"][0]["mood_by_day"][0][1], 3.0);
    assert_eq!(d.stop().0, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dose_taken_before_the_deadline_is_not_escalated() {
    let server = receiver().await;
    let (at, cron) = cron_in(2);
    // The escalation would be due at +4 s; the canary at +6 s shows the daemon got there.
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!(
            "[[medication]]\nid = \"meds\"\nname = \"lithium\"\ncron = \"{cron}\"\nconfirm_within = \"4s\"\nescalate = [\"sam\"]\nmessage = \"Dose time.\"\n\n{}",
            canary(at + chrono::Duration::seconds(6))
        ),
    ));
    let d = Daemon::start(dir.path(), &env());
    assert_eq!(
        wait_for(&server, "/me", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    let out = kithd(
        dir.path(),
        &[
            "ack",
            "meds",
            "--value",
            "taken",
            "--note",
            "with food",
            "--state-dir",
            "state",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("answered `meds` (due "),
        "{}",
        text(&out.stdout)
    );
    wait_canary(&server, "/me", Duration::from_secs(20)).await;
    assert_eq!(d.stop().0, Some(0));
    assert!(
        bodies(&server, "/sam").await.is_empty(),
        "Sam was alerted although the dose was taken"
    );
    let again = kithd(dir.path(), &["ack", "meds", "--state-dir", "state"]);
    assert_eq!(again.status.code(), Some(65));
    assert_eq!(
        text(&again.stderr),
        "error: nothing of `meds` is waiting for an answer\n"
    );
    // A typo is not "nothing waiting": the item never fired here.
    dir.kithd(&["ack", "mesd", "--state-dir", "state"])
        .status(65)
        .stderr("error: no item `mesd` has ever fired here; did you mean `meds`?\n")
        .run();
    let report = text(&kithd(dir.path(), &["report", "--state-dir", "state"]).stdout);
    assert!(
        report.contains("meds                 taken 1/1  skipped 0  no answer 0  missed 0"),
        "{report}"
    );
    assert!(report.contains("Escalations sent: 0"), "{report}");
    dir.kithd(&["history", "--state-dir", "state", "--item", "meds"])
        .status(0)
        .stdout_has("(dose reminder) → self via me  sent")
        .stdout_has("; answered taken, note: \"with food\"\n")
        .run();
}

#[test]
fn contacts_without_consent_or_on_never_contact_are_refused_by_check() {
    let dir = project(&plan_text(
        "http://127.0.0.1:9",
        "never_contact = [\"kim\"]",
        "[[checkin]]\nid = \"c\"\nat = \"09:00\"\nexpect_reply_within = \"1h\"\nescalate = [\"kim\", \"lee\"]\nto = [\"self\", \"kim\"]\nmessage = \"Hi\"\n\n[contacts.lee]\nname = \"Lee\"\nreach = [\"sam\"]\n",
    ));
    dir.kithd(&["check", "plan.toml"])
        .status(65)
        .stdout("")
        .stderr_has("error: contact `kim` is on the plan's `never_contact` list")
        .stderr_has("would alert contact `lee`, who has not consented")
        .stderr_has("would message contact `kim`, who is on the plan's `never_contact` list")
        .run();
}

#[tokio::test(flavor = "multi_thread")]
async fn never_contact_added_by_reload_stops_a_pending_escalation() {
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let item = |escalate: &str| {
        format!(
            "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"4s\"\nescalate = [{escalate}]\nmessage = \"Hi\"\n"
        )
    };
    let dir = project(&plan_text(&server.uri(), "", &item("\"sam\"")));
    let d = Daemon::start(dir.path(), &env());
    assert_eq!(
        wait_for(&server, "/me", 1, Duration::from_secs(10))
            .await
            .len(),
        1
    );
    std::fs::write(
        dir.path().join("plan.toml"),
        plan_text(&server.uri(), "never_contact = [\"sam\"]", &item("")),
    )
    .unwrap();
    d.hup();
    d.wait_log("Plan reloaded.", Duration::from_secs(5));
    // The step's time comes (+4 s) and the daemon says it skipped it; stopped then, with
    // anything claimed in that pass finished, Sam has received nothing.
    d.wait_log("Escalation step skipped", Duration::from_secs(15));
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    assert!(bodies(&server, "/sam").await.is_empty(), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_mid_escalation_neither_drops_nor_repeats_a_step() {
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!(
            "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"3s\"\nescalate = [\"sam\", \"kim\"]\nescalate_every = \"4s\"\nmessage = \"Hi\"\n"
        ),
    ));
    let d = Daemon::start(dir.path(), &env());
    assert_eq!(
        wait_for(&server, "/sam", 1, Duration::from_secs(12))
            .await
            .len(),
        1,
        "{}",
        d.logs()
    );
    // Killed once Sam's alert is recorded as sent: a delivery still in flight at a crash
    // is sent again by design (at least once), and that is not what this test is about.
    d.wait_log("recipient=sam latency_ms", Duration::from_secs(5));
    d.kill9();
    let d = Daemon::start(dir.path(), &env());
    assert_eq!(
        wait_for(&server, "/kim", 1, Duration::from_secs(12))
            .await
            .len(),
        1,
        "{}",
        d.logs()
    );
    // A repeated step would have been sent at the restart, before Kim's (+4 s later).
    assert_eq!(d.stop().0, Some(0));
    assert_eq!(
        bodies(&server, "/sam").await.len(),
        1,
        "Sam's step was repeated"
    );
    assert_eq!(
        bodies(&server, "/kim").await.len(),
        1,
        "Kim's step was repeated"
    );
    assert_eq!(bodies(&server, "/me").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_server_refuses_forged_reused_expired_and_oversized_requests() {
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!("[[checkin]]\nid = \"secret-item\"\ncron = \"{cron}\"\nmessage = \"Hi {{answer_url}}\"\n\n[[medication]]\nid = \"meds\"\nname = \"x\"\ncron = \"{cron}\"\nmessage = \"Dose {{answer_url}}\"\n"),
    )
    .replace("[server]\n", "[server]\nlink_ttl = \"6s\"\n"));
    let d = Daemon::start(dir.path(), &env());
    let me = wait_for(&server, "/me", 2, Duration::from_secs(10)).await;
    let http = reqwest::Client::new();
    let base = d.answer_base();
    let checkin = me.iter().find(|m| m["item"] == "secret-item").unwrap();
    let link = link_in(checkin["text"].as_str().unwrap(), &base);

    // Forged: any byte changed, a cut token, or none at all. The token is opaque: the
    // item id reads nowhere in the link.
    let token = link.rsplit('/').next().unwrap();
    assert!(!link.contains("secret-item") && !link.contains("meds"));
    let flip = |at: usize| {
        let mut t = token.as_bytes().to_vec();
        t[at] = if t[at] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };
    for forged in [
        flip(2),
        flip(20),
        flip(token.len() - 3),
        token[..token.len() - 4].to_string(),
        "nonsense".into(),
    ] {
        let r = http
            .post(format!("{base}/a/{forged}"))
            .form(&[("value", "ok")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("secret-item") && !body.contains("Alex"),
            "{body}"
        );
    }
    // A medication answer on a check-in link is refused; an oversized body too.
    assert_eq!(
        http.post(&link)
            .form(&[("value", "taken")])
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let big = format!("value=ok&pad={}", "x".repeat(10_000));
    let r = http
        .post(&link)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Inbound replies: the shared secret, the person's number, then the answer.
    let inbound = |auth: &str, from: &str, text: &str| {
        http.post(format!("{base}/inbound"))
            .header("authorization", format!("Bearer {auth}"))
            .body(serde_json::json!({"from": from, "text": text}).to_string())
            .send()
    };
    assert_eq!(
        inbound("wrong", "+4915100000001", "TAKEN")
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        inbound(
            "inbound-secret-1-for-the-answer-test",
            "+15550000000",
            "TAKEN"
        )
        .await
        .unwrap()
        .status(),
        404
    );
    assert_eq!(
        inbound(
            "inbound-secret-1-for-the-answer-test",
            "+4915100000001",
            "maybe"
        )
        .await
        .unwrap()
        .status(),
        422
    );
    let ok = inbound(
        "inbound-secret-1-for-the-answer-test",
        "+49 151 00000001",
        "TAKEN",
    )
    .await
    .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        inbound(
            "inbound-secret-1-for-the-answer-test",
            "+4915100000001",
            "TAKEN"
        )
        .await
        .unwrap()
        .status(),
        404,
        "nothing left to answer"
    );
    // Expired: the link lives 6 s.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(http.get(&link).send().await.unwrap().status(), 404);
    assert_eq!(
        http.get(format!("{base}/anything"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let report = text(
        &kithd(
            dir.path(),
            &["report", "--state-dir", "state", "--format", "csv"],
        )
        .stdout,
    );
    assert!(
        report.contains("meds,medication,1,1,0,1,0,0,0,"),
        "{report}"
    );
    assert!(
        report.contains("secret-item,checkin,1,0,0,0,0,1,0,"),
        "{report}"
    );
    assert_eq!(d.stop().0, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn preview_tells_what_happens_without_an_answer_and_the_daemon_does_it() {
    let server = receiver().await;
    let (at, cron) = cron_in(3);
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!(
            "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"4s\"\nnag = \"2s x1\"\nescalate = [\"sam\", \"kim\"]\nescalate_every = \"2s\"\nmessage = \"Hi\"\n"
        ),
    ));
    // The timeline preview promises, from just before the firing.
    let from = (at - chrono::Duration::seconds(1)).to_rfc3339();
    let out = dir
        .kithd(&[
            "preview",
            "plan.toml",
            "--from",
            &from,
            "--count",
            "1",
            "--format",
            "json",
        ])
        .status(0)
        .run();
    let line: Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<(String, String, String, Value)> = line["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["action"].as_str().unwrap().to_string(),
                s["to"].as_str().unwrap().to_string(),
                s["channel"].as_str().unwrap().to_string(),
                s["at"].clone(),
            )
        })
        .collect();
    let t = |secs: i64| Value::String((at + chrono::Duration::seconds(secs)).to_rfc3339());
    assert_eq!(
        steps,
        [
            ("nudge".into(), "self".into(), "me".into(), t(2)),
            ("escalate".into(), "sam".into(), "sam".into(), t(4)),
            ("escalate".into(), "kim".into(), "kim".into(), t(6)),
            ("all_clear".into(), "sam".into(), "sam".into(), Value::Null),
            ("all_clear".into(), "kim".into(), "kim".into(), Value::Null),
        ]
    );
    dir.kithd(&["preview", "plan.toml", "--from", &from, "--count", "1"])
        .status(0)
        .stdout_has("    if no answer: ")
        .stdout_has("  alert to Kim via kim\n")
        .stdout_has("    after an alert, a late answer sends an all-clear to Sam via sam\n")
        .run();
    // Unanswered, the daemon does that: each step sent, none before preview's time, in
    // preview's order (the ledger's `due` is a claim's lease once sent, so `sent_at` it is).
    let d = Daemon::start(dir.path(), &env());
    assert_eq!(
        wait_for(&server, "/kim", 1, Duration::from_secs(15))
            .await
            .len(),
        1,
        "{}",
        d.logs()
    );
    d.wait_log("recipient=kim latency_ms", Duration::from_secs(5));
    assert_eq!(d.stop().0, Some(0));
    let history = dir
        .kithd(&["history", "--state-dir", "state", "--format", "json"])
        .status(0)
        .run();
    let rows: Vec<Value> = String::from_utf8_lossy(&history.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent = |purpose: &str, to: &str| {
        let r = rows
            .iter()
            .find(|r| r["purpose"] == purpose && r["recipient"] == to)
            .unwrap_or_else(|| panic!("no {purpose} to {to}: {rows:?}"));
        assert_eq!(r["state"], "sent");
        r["sent_at"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap()
    };
    let (nudge, sam, kim) = (
        sent("nag:1", "self"),
        sent("escalate:0", "sam"),
        sent("escalate:1", "kim"),
    );
    let secs = |k: i64| at + chrono::Duration::seconds(k);
    assert!(
        nudge >= secs(2) && sam >= secs(4) && kim >= secs(6),
        "{rows:?}"
    );
    assert!(nudge < sam && sam < kim, "{rows:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snoozing_moves_the_deadline_and_the_alert_up_to_the_cap() {
    let server = receiver().await;
    let (at, cron) = cron_in(2);
    // Sam would be alerted at +5 s; the canary at +12 s shows the loop got past that.
    let dir = project(&plan_text(
        &server.uri(),
        "",
        &format!(
            "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"5s\"\nescalate = [\"sam\"]\nmax_snooze = \"3m\"\nmessage = \"How are you? {{answer_url}}\"\n\n{}",
            canary(at + chrono::Duration::seconds(12))
        ),
    ));
    let d = Daemon::start(dir.path(), &env());
    let me = wait_for(&server, "/me", 1, Duration::from_secs(10)).await;
    assert_eq!(me.len(), 1, "{}", d.logs());
    // By the command line: a minute later, and so is the alert.
    dir.kithd(&["snooze", "c", "1m", "--state-dir", "state"])
        .status(0)
        .stdout_has("snoozed `c`: sent again ")
        .stdout_has("; its deadline and any alert move 1 min later (2 min of snoozing left)\n")
        .run();
    // By SMS reply, through the generic /inbound.
    let base = d.answer_base();
    let http = reqwest::Client::new();
    let sms = http
        .post(format!("{base}/inbound"))
        .header(
            "authorization",
            "Bearer inbound-secret-1-for-the-answer-test",
        )
        .body(serde_json::json!({"from": "+4915100000001", "text": "Snooze 1m"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(sms.status(), 200);
    // By the answer page's button.
    let link = link_in(me[0]["text"].as_str().unwrap(), &base);
    let page = http.get(&link).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("value=\"snooze\">Remind me in 30 min"),
        "{page}"
    );
    let snoozed = http
        .post(&link)
        .form(&[("value", "snooze")])
        .send()
        .await
        .unwrap();
    assert_eq!(snoozed.status(), 200);
    // Asked for 30 min, it got what was left of the 3 min cap: one more minute.
    let said = snoozed.text().await.unwrap();
    assert!(said.contains("We'll remind you again at "), "{said}");
    // The cap: 3 minutes in all, so nothing more.
    dir.kithd(&["snooze", "c", "--state-dir", "state"])
        .status(65)
        .stderr(
            "error: `c` has been snoozed as long as its `max_snooze` allows; it stays as it is\n",
        )
        .run();
    wait_canary(&server, "/me", Duration::from_secs(20)).await;
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0));
    assert!(
        bodies(&server, "/sam").await.is_empty(),
        "Sam was alerted although the check-in was snoozed: {logs}"
    );
    // The snoozes are in the journal: the reminders to be sent again are waiting.
    let history = text(&kithd(dir.path(), &["history", "--state-dir", "state"]).stdout);
    assert_eq!(
        history
            .matches("(again, after a snooze) → self via me  pending")
            .count(),
        3,
        "{history}"
    );
    dir.kithd(&["report", "--state-dir", "state"])
        .status(0)
        .stdout_has("snoozed 3 times")
        .run();
}
