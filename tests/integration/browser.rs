//! The person's pages in a real browser: Debian's Chromium, headless, driven by
//! `tests/browser/pages.mjs` (playwright-core) at 390×844. It opens the answer link of a
//! really delivered message, answers with a note, sees the confirmation, reopens and reuses
//! the link, signs in to today's page and opens the report; axe-core checks every page
//! (no critical or serious violation), every touch target is at least 44 px, and nothing
//! scrolls sideways at 320 px with the text at 200 %. The ledger holds the answer and its
//! note, and the escalation does not follow. Screenshots go to `target/screenshots/`.

use std::time::Duration;

use crate::daemon::{
    Daemon, bodies, canary, cron_in, link_at, project, receiver, wait_canary, wait_for, webhook,
};
use crate::person_page::{env, set_passphrase};

const PUBLIC: &str = "http://127.0.0.1:0";
const PASSPHRASE: &str = "a long and private passphrase";

#[tokio::test(flavor = "multi_thread")]
async fn the_pages_work_on_a_phone_in_chromium_and_pass_axe() {
    let root = crate::support::root();
    assert!(
        root.join("tests/browser/node_modules/playwright-core")
            .exists()
            && std::path::Path::new("/usr/bin/chromium").exists(),
        "the browser test needs Debian's chromium and `npm ci` in tests/browser (scripts/test.sh installs both)"
    );
    let server = receiver().await;
    let (at, cron) = cron_in(2);
    let dir = project(&format!(
        "crisis_text = \"Call Sam on 0151 0000 0002, or the crisis line on 0800 111 0 111.\"\n\n\
         [person]\nname = \"Alex\"\ntimezone = \"{}\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n{}{}\n\
         [[checkin]]\nid = \"evening\"\ntitle = \"Evening check-in\"\ncron = \"{cron}\"\ntimezone = \"UTC\"\nexpect_reply_within = \"20s\"\nescalate = [\"sam\"]\nmessage = \"How are you? {{answer_url}}\"\n\n\
         [[followup]]\nid = \"call-sam\"\nwith = \"sam\"\nat = \"10:00\"\nmessage = \"Maybe call {{with}} today?\"\n\n\
         [[medication]]\nid = \"sertraline-evening\"\nname = \"sertraline\"\ncron = \"{cron}\"\ntimezone = \"UTC\"\nconfirm_within = \"1h\"\nmessage = \"Sertraline: {{answer_url}}\"\n\n{}",
        crate::daemon::zone_near_noon(),
        webhook("me", &format!("{}/me", server.uri()), ""),
        webhook("sam", &format!("{}/sam", server.uri()), ""),
        canary(at + chrono::Duration::seconds(24))
            .replace("id = \"canary\"\n", "id = \"canary\"\ntimezone = \"UTC\"\n"),
    ));
    let d = Daemon::start(dir.path(), &env());
    let me = wait_for(&server, "/me", 2, Duration::from_secs(15)).await;
    let base = d.answer_base();
    let checkin = me
        .iter()
        .find(|m| m["item"] == "evening")
        .unwrap_or_else(|| panic!("{me:?}"));
    let link = link_at(checkin["text"].as_str().unwrap(), PUBLIC, &base);
    assert!(set_passphrase(&dir, PASSPHRASE).status.success());

    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(root.join("tests/browser/pages.mjs"))
        .env("KITHD_BASE", &base)
        .env("KITHD_LINK", &link)
        .env("KITHD_PASSPHRASE", PASSPHRASE)
        .env("KITHD_SHOTS", &shots)
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(said.trim()).unwrap();
    eprintln!("browser: {r:#}");

    for name in [
        "answer",
        "answered",
        "link-not-valid",
        "sign-in",
        "today",
        "report",
    ] {
        let p = &r["pages"][name];
        let bad: Vec<&serde_json::Value> = p["axe"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} was not checked: {r}"))
            .iter()
            .filter(|v| v["impact"] == "critical" || v["impact"] == "serious")
            .collect();
        assert!(bad.is_empty(), "{name}: {bad:?}");
        assert!(
            p["smallest_target"].as_i64().is_none_or(|px| px >= 44),
            "{name}: {p}"
        );
        assert_eq!(
            p["overflow_320_at_200"], false,
            "{name} scrolls sideways at 320 px, 200 %"
        );
        assert!(shots.join(format!("{name}.png")).exists());
    }
    assert_eq!(
        r["external"],
        serde_json::json!([]),
        "no request leaves the server"
    );
    assert_eq!(r["pages_status"]["answer"], 200);
    let confirmation = r["confirmation"].as_str().unwrap();
    assert!(
        confirmation.contains("Your answer is saved.")
            && confirmation.contains("Sam won't be alerted."),
        "{confirmation}"
    );
    assert!(
        r["reopened"].as_str().unwrap().contains("answered already"),
        "{r}"
    );
    assert_eq!(r["pages_status"]["reused"], 410);
    assert!(
        r["reused"]
            .as_str()
            .unwrap()
            .contains("This link can't be used")
    );
    assert_eq!(r["pages_status"]["cut"], 404);
    assert!(r["cut"].as_str().unwrap().contains("Nothing was recorded"));
    let today = r["today"].as_str().unwrap();
    assert!(
        today.contains("Evening check-in") && today.contains("Answered (4)"),
        "{today}"
    );
    assert!(
        today.contains("Waiting for you") && !today.contains("sertraline"),
        "{today}"
    );
    assert_eq!(r["cookie"]["httpOnly"], true);
    assert_eq!(r["cookie"]["sameSite"], "Strict");
    assert!(r["report"].as_str().unwrap().contains("Average 4.0"), "{r}");

    // The ledger has the answer and its note, once; and no alert follows the deadline.
    wait_canary(&server, "/me", Duration::from_secs(40)).await;
    d.stop();
    let export = dir
        .kithd(&["export", "--state-dir", "state"])
        .status(0)
        .run();
    let export: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let answers: Vec<&serde_json::Value> = export["answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["item"] == "evening")
        .collect();
    assert_eq!(answers.len(), 1, "{answers:?}");
    assert_eq!(answers[0]["value"], "4");
    assert_eq!(answers[0]["note"], "a quiet evening, walked by the river");
    assert_eq!(answers[0]["via"], "link");
    assert!(bodies(&server, "/sam").await.is_empty(), "Sam was alerted");
}
