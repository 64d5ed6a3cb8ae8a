//! `kithd run DIR` through the real binary: every valid plan of a directory runs in one
//! process (a plan with problems is reported and the others run), each with its own ledger
//! under `state/plans/ID/`, delivery ids that never collide although the item ids do, one
//! answer server whose links name their plan, `--plan` on the reading commands, and SIGHUP
//! starting a new plan and retiring a removed one (its pending delivery cancelled).

use std::time::Duration;

use chrono::Utc;

use crate::builder::Project;
use crate::daemon::{Daemon, cron_in, receiver, wait_for, webhook};

const KEY: &str = "0123456789abcdef0123456789abcdef-test-key";
const PUBLIC: &str = "http://127.0.0.1:0";

/// A plan for `id`, reached at the sink's `/ID`, with `extra` in `[person]`.
fn plan(id: &str, sink: &str, extra: &str, items: &str) -> String {
    format!(
        "[person]\nid = \"{id}\"\nname = \"P\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n{extra}\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n{}\n{items}",
        webhook("me", &format!("{sink}/{id}"), ""),
    )
}

/// A check-in `mood` at `cron` with an answer link (the same item id in every plan).
fn mood(cron: &str) -> String {
    format!(
        "[[checkin]]\nid = \"mood\"\ncron = \"{cron}\"\nexpect_reply_within = \"1h\"\nmessage = \"How are you? {{answer_url}}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_directory_of_plans_runs_side_by_side() {
    let sink = receiver().await;
    let (_, cron) = cron_in(3);
    let p = Project::empty();
    p.file(
        "plans/robin.toml",
        &plan("robin", &sink.uri(), "", &mood(&cron)),
    );
    // Lee is in quiet hours now: the check-in waits, pending, until they end.
    let now = Utc::now();
    let quiet = format!(
        "phone = \"+4915100000002\"\nquiet_hours = \"{}-{}\"\n",
        (now - chrono::Duration::hours(1)).format("%H:%M"),
        (now + chrono::Duration::hours(2)).format("%H:%M")
    );
    let waits = format!("{}respect_quiet_hours = true\n", mood(&cron));
    p.file("plans/lee.toml", &plan("lee", &sink.uri(), &quiet, &waits));
    p.file("plans/broken.toml", "[person\nname = ");
    let env = [
        ("KITHD_SECRET_ANSWER_KEY", KEY),
        (
            "KITHD_SECRET_INBOUND_TOKEN",
            "inbound-secret-for-the-directory-test",
        ),
    ];
    let d = Daemon::start_plan(p.path(), "plans", &env);
    // The supervisor's own "Ready." (each plan logs one too, earlier).
    d.wait_log("plans=2 with_problems=1", Duration::from_secs(20));
    let logs = d.logs();
    assert!(
        logs.contains("This plan has problems and is not run") && logs.contains("broken.toml"),
        "{logs}"
    );
    assert_eq!(
        logs.matches("Answer server listening.").count(),
        1,
        "one answer server for every plan:\n{logs}"
    );
    let base = d.answer_base();
    // Robin's check-in arrives; its link names robin's plan and answers robin's check-in.
    let robin = wait_for(&sink, "/robin", 1, Duration::from_secs(15)).await;
    assert_eq!(robin.len(), 1, "{}", d.logs());
    let message = robin[0]["text"].as_str().unwrap();
    let link = message[message.find(PUBLIC).unwrap()..]
        .split_whitespace()
        .next()
        .unwrap()
        .replacen(PUBLIC, &base, 1);
    let page = reqwest::Client::new()
        .post(&link)
        .form(&[("value", "4")])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Your answer is saved"));
    // Each plan's ledger is its own; the same item at the same time has two delivery ids.
    let history = |id: &str| p.plan_json("history", id, &[]);
    let (r, l) = (history("robin"), history("lee"));
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(l.len(), 1, "{l:?}");
    assert_eq!(r[0]["id"], robin[0]["delivery_id"]);
    assert_ne!(
        r[0]["id"], l[0]["id"],
        "two plans never share a delivery id"
    );
    assert_eq!(l[0]["state"], "pending", "{l:?}");
    let answered = |id: &str| Some(p.answered(id, &[]));
    assert_eq!(answered("robin"), Some(1));
    assert_eq!(answered("lee"), Some(0));
    // A reply through `/inbound` goes to the plan whose person sent it.
    let reply = reqwest::Client::new()
        .post(format!("{base}/inbound"))
        .bearer_auth("inbound-secret-for-the-directory-test")
        .json(&serde_json::json!({"from": "+49 151 00000002", "text": "3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!((answered("robin"), answered("lee")), (Some(1), Some(1)));
    // The person's page: the sign-in asks which plan; robin's passphrase opens robin's.
    let set = crate::person_page::set_passphrase_of(&p, &["--plan", "robin"], "robin's own words");
    assert!(set.status.success(), "{set:?}");
    let login = reqwest::get(format!("{base}/me"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains("name=\"plan\""), "{login}");
    let sign_in =
        |plan| crate::person_page::sign_in_as(&base, Some(plan), "robin's own words", false);
    for other in ["lee", "nobody"] {
        assert_eq!(
            sign_in(other).await,
            Err(reqwest::StatusCode::UNAUTHORIZED),
            "as if the passphrase were wrong"
        );
    }
    let cookie = sign_in("robin").await.unwrap();
    let today = reqwest::Client::new()
        .get(format!("{base}/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(today.contains("Answered (4)"), "{today}");
    p.kithd(&["status", "--state-dir", "state", "--plan", "robin"])
        .stdout_has("Health: healthy")
        .stdout_has("Pending or retrying (0)")
        .run();
    p.kithd(&["status", "--state-dir", "state", "--plan", "lee"])
        .stdout_has("Pending or retrying (1)")
        .run();
    // Without `--plan`: status lists the plans, which run and which can't; the other
    // commands ask which plan.
    p.kithd(&["status", "--state-dir", "state"])
        .stdout_has("Plans running (2):\n  lee\n  robin\n")
        .stdout_has("broken.toml: 1 problem")
        .run();
    p.kithd(&["status", "--state-dir", "state", "--check"])
        .status(1)
        .stdout_has("KITHD WARNING - 2 plans running, not running (problems): broken.toml")
        .run();
    p.kithd(&["history", "--state-dir", "state"])
        .status(64)
        .stderr_has("give `--plan ID` (one of: lee, robin)")
        .run();
    // SIGHUP: lee's plan is removed (its pending check-in is cancelled, recorded as such)
    // and sky's is added (and runs).
    std::fs::remove_file(p.path().join("plans/lee.toml")).unwrap();
    let (_, soon) = cron_in(2);
    p.file(
        "plans/sky.toml",
        &plan("sky", &sink.uri(), "", &mood(&soon)),
    );
    d.hup();
    let sky = wait_for(&sink, "/sky", 1, Duration::from_secs(15)).await;
    assert_eq!(sky.len(), 1, "{}", d.logs());
    d.wait_log(
        "pending deliveries and steps are cancelled",
        Duration::from_secs(10),
    );
    let l = history("lee");
    assert_eq!(l[0]["state"], "cancelled", "{l:?}");
    assert_eq!(
        l[0]["last_error"], "its plan was removed from the directory",
        "{l:?}"
    );
    assert!(
        bodies_at(&sink, "/lee").await == 0,
        "lee's check-in was never sent"
    );
    let (code, _, logs) = d.stop();
    assert_eq!(code, Some(0), "{logs}");
}

async fn bodies_at(sink: &wiremock::MockServer, path: &str) -> usize {
    crate::daemon::bodies(sink, path).await.len()
}
