//! The person's pages with the real binary: an answer link that names nothing readable and
//! a dose page that shows only its time; `kithd passphrase`, then `/me` behind it (wrong
//! tries limited, the session cookie's flags, a new passphrase ending the session); a
//! check-in answered in place with a note (in the ledger, and its contact spared); the
//! charts on `/me/report` and in `kithd report --format html --output FILE`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use crate::builder::{Cmd, Project};
use crate::daemon::{Daemon, cron_in, link_at, project, receiver, wait_for, webhook};

const KEY: &str = "0123456789abcdef0123456789abcdef-page-key";
const PUBLIC: &str = "http://127.0.0.1:0";
const PASSPHRASE: &str = "correct horse battery";

fn plan_text(uri: &str, cron: &str) -> String {
    format!(
        "[person]\nname = \"Alex\"\ntimezone = \"{zone}\"\nreach = [\"me\"]\n\n\
         [contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\nreach = [\"sam\"]\nconsent = 2026-11-01\n\n\
         [server]\nlisten = \"127.0.0.1:0\"\npublic_url = \"{PUBLIC}\"\n\n{}{}\n\
         [[checkin]]\nid = \"evening\"\ntitle = \"Evening check-in\"\ncron = \"{cron}\"\ntimezone = \"UTC\"\nexpect_reply_within = \"1h\"\nescalate = [\"sam\"]\nmessage = \"How are you? {{answer_url}}\"\n\n\
         [[medication]]\nid = \"sertraline-evening\"\nname = \"sertraline\"\ncron = \"{cron}\"\ntimezone = \"UTC\"\nconfirm_within = \"1h\"\nmessage = \"Sertraline now: {{answer_url}}\"\n",
        webhook("me", &format!("{uri}/me"), ""),
        webhook("sam", &format!("{uri}/sam"), ""),
        zone = crate::daemon::zone_near_noon(),
    )
}

pub fn env() -> Vec<(&'static str, &'static str)> {
    vec![("KITHD_SECRET_ANSWER_KEY", KEY)]
}

/// `kithd passphrase` in `dir` with `passphrase` on standard input (not a terminal).
pub fn set_passphrase(dir: &Project, passphrase: &str) -> std::process::Output {
    set_passphrase_of(dir, &[], passphrase)
}

/// `kithd passphrase` with `extra` arguments (`--plan ID`).
pub fn set_passphrase_of(dir: &Project, extra: &[&str], passphrase: &str) -> std::process::Output {
    let mut args = vec!["passphrase", "--state-dir", "state"];
    args.extend_from_slice(extra);
    let mut child = Cmd::new(dir.path(), &args)
        .command()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{passphrase}").unwrap();
    child.wait_with_output().unwrap()
}

/// Signs in at `base` over plain http: the session cookie (`name=value`).
pub async fn sign_in(base: &str, passphrase: &str) -> Result<String, reqwest::StatusCode> {
    sign_in_as(base, None, passphrase, false).await
}

/// Signs in at `base` (to `plan`, in a directory of plans): the session cookie
/// (`name=value`), whose flags are checked, `Secure` only where `secure`.
pub async fn sign_in_as(
    base: &str,
    plan: Option<&str>,
    passphrase: &str,
    secure: bool,
) -> Result<String, reqwest::StatusCode> {
    let mut form = vec![("passphrase", passphrase)];
    form.extend(plan.map(|p| ("plan", p)));
    let r = no_redirects()
        .post(format!("{base}/me/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    if r.status() != 303 {
        return Err(r.status());
    }
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(flag), "{set}");
    }
    assert_eq!(set.ends_with("; Secure"), secure, "{set}");
    Ok(set.split(';').next().unwrap().to_string())
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// GETs `path` with the session `cookie`: status and page.
async fn get(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let r = no_redirects()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let h = r.headers().clone();
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_person_answers_in_place_behind_a_passphrase_and_sees_how_it_has_gone() {
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan_text(&server.uri(), &cron));
    let d = Daemon::start(dir.path(), &env());
    let me = wait_for(&server, "/me", 2, Duration::from_secs(15)).await;
    let base = d.answer_base();

    // The dose's link and page name no medication: only its time.
    let dose = me
        .iter()
        .find(|m| m["item"] == "sertraline-evening")
        .unwrap_or_else(|| panic!("{me:?} {}", d.logs()));
    let link = link_at(dose["text"].as_str().unwrap(), PUBLIC, &base);
    assert!(
        !link.contains("sertraline") && !link.contains("evening"),
        "{link}"
    );
    let (status, page) = get(&base, &link[base.len()..], "").await;
    assert_eq!(status, 200);
    assert!(
        page.contains("<h1>Your ") && page.contains(" dose</h1>"),
        "{page}"
    );
    assert!(
        !page.contains("sertraline") && !page.contains("Sertraline"),
        "{page}"
    );

    // No page before a passphrase; then a sign-in form that shows nothing else.
    let (status, login) = get(&base, "/me", "").await;
    assert_eq!(status, 200);
    assert!(
        login.contains("type=\"password\"") && !login.contains("Evening"),
        "{login}"
    );
    assert_eq!(
        sign_in(&base, PASSPHRASE).await,
        Err(reqwest::StatusCode::NOT_FOUND)
    );
    let set = set_passphrase(&dir, PASSPHRASE);
    assert!(set.status.success(), "{set:?}");
    assert!(!String::from_utf8_lossy(&set.stdout).contains(PASSPHRASE));
    assert_eq!(
        sign_in(&base, "wrong one!").await,
        Err(reqwest::StatusCode::UNAUTHORIZED)
    );
    let cookie = sign_in(&base, PASSPHRASE).await.unwrap();

    // Today: both open, the check-in by its title, the dose by its time; the week ahead.
    let (status, today) = get(&base, "/me", &cookie).await;
    assert_eq!(status, 200, "{today}");
    assert!(today.contains("<h3>Evening check-in</h3>"), "{today}");
    assert!(
        today.contains(" dose</h3>") && !today.contains("sertraline</"),
        "{today}"
    );
    assert_eq!(today.matches("Waiting for you").count(), 2, "{today}");
    assert!(today.contains("The next 7 days") && today.contains("action=\"/me/answer\""));
    let marker = "name=\"item\" value=\"evening\"><input type=\"hidden\" name=\"at\" value=\"";
    let at = today[today.find(marker).unwrap() + marker.len()..]
        .split('"')
        .next()
        .unwrap()
        .to_string();

    // With no answer yet, the report's charts are empty and say so.
    let empty = dir
        .kithd(&["report", "--state-dir", "state", "--format", "html"])
        .status(0)
        .run();
    let empty = String::from_utf8(empty.stdout).unwrap();
    assert!(
        empty.contains("No answers yet") && empty.contains("<svg"),
        "{empty}"
    );

    // Answered in place, with a note: saved, and Sam won't be alerted.
    let done = no_redirects()
        .post(format!("{base}/me/answer"))
        .header("cookie", &cookie)
        .form(&[
            ("item", "evening"),
            ("at", at.as_str()),
            ("value", "4"),
            ("note", "walked by the river"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let done = done.text().await.unwrap();
    assert!(
        done.contains("Your answer is saved.") && done.contains("Sam won't be alerted."),
        "{done}"
    );
    // Without a session, nothing is answered.
    let refused = no_redirects()
        .post(format!("{base}/me/answer"))
        .form(&[
            ("item", "sertraline-evening"),
            ("at", at.as_str()),
            ("value", "taken"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let (_, today) = get(&base, "/me", &cookie).await;
    assert!(today.contains("Answered (4)"), "{today}");

    let export = dir
        .kithd(&["export", "--state-dir", "state"])
        .status(0)
        .run();
    let export: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    let answers = export["answers"].as_array().unwrap();
    let evening = answers.iter().find(|a| a["item"] == "evening").unwrap();
    assert_eq!(evening["value"], "4");
    assert_eq!(evening["note"], "walked by the river");
    assert_eq!(evening["via"], "page");
    let dose = answers
        .iter()
        .find(|a| a["item"] == "sertraline-evening")
        .unwrap();
    assert!(
        dose["value"].is_null(),
        "nothing answered without a session: {dose}"
    );

    // How it has gone: the charts, on the page and as one self-contained file.
    let (status, report) = get(&base, "/me/report?days=90", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        report.contains("<svg") && report.contains("Average 4.0"),
        "{report}"
    );
    assert!(report.contains("<strong>Last 90 days</strong>") && !report.contains("<script"));
    dir.kithd(&[
        "report",
        "--state-dir",
        "state",
        "--format",
        "html",
        "--output",
        "report.html",
    ])
    .status(0)
    .run();
    let file = dir.path().join("report.html");
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(
        html.starts_with("<!doctype html>")
            && html.contains("http-equiv=\"Content-Security-Policy\"")
    );
    assert!(
        html.contains("<title>2") && html.contains(": 4.0</title>") && !html.contains("<script"),
        "{html}"
    );

    // A new passphrase ends the session; wrong tries are limited, even for the right one.
    assert!(set_passphrase(&dir, "another passphrase").status.success());
    let (_, after) = get(&base, "/me", &cookie).await;
    assert!(after.contains("type=\"password\""), "{after}");
    for _ in 0..4 {
        assert_eq!(
            sign_in(&base, "not it at all").await,
            Err(reqwest::StatusCode::UNAUTHORIZED)
        );
    }
    assert_eq!(
        sign_in(&base, "another passphrase").await,
        Err(reqwest::StatusCode::TOO_MANY_REQUESTS)
    );
    d.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_answer_page_speaks_the_plans_language_and_https_makes_the_cookie_secure() {
    const HTTPS: &str = "https://127.0.0.1:0";
    let server = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(
        &plan_text(&server.uri(), &cron)
            .replace(
                "reach = [\"me\"]\n\n[contacts",
                "reach = [\"me\"]\nlanguage = \"de-AT\"\n\n[contacts",
            )
            .replace(PUBLIC, HTTPS),
    );
    let d = Daemon::start(dir.path(), &env());
    let me = wait_for(&server, "/me", 2, Duration::from_secs(15)).await;
    let base = d.answer_base();
    let pick = |item: &str| {
        let m = me
            .iter()
            .find(|m| m["item"] == item)
            .unwrap_or_else(|| panic!("{me:?} {}", d.logs()));
        link_at(m["text"].as_str().unwrap(), HTTPS, &base)
    };
    let (_, checkin) = get(&base, &pick("evening")[base.len()..], "").await;
    assert!(
        checkin.contains("<html lang=\"de\">") && checkin.contains("Wie geht es dir?"),
        "{checkin}"
    );
    let zone: chrono_tz::Tz = crate::daemon::zone_near_noon().parse().unwrap();
    let date = chrono::Utc::now()
        .with_timezone(&zone)
        .format("%-d.%-m.%Y")
        .to_string();
    assert!(
        checkin.contains("Fällig um ") && checkin.contains(&date),
        "{checkin}"
    );
    let (_, dose) = get(&base, &pick("sertraline-evening")[base.len()..], "").await;
    assert!(
        dose.contains("<h1>Deine Dosis um ") && dose.contains("Genommen"),
        "{dose}"
    );
    let done = crate::daemon::choose(&pick("sertraline-evening"), "taken").await;
    assert!(done.contains("Deine Antwort ist gespeichert."), "{done}");
    // Where people open pages over https, the session cookie says Secure.
    assert!(set_passphrase(&dir, PASSPHRASE).status.success());
    assert!(sign_in_as(&base, None, PASSPHRASE, true).await.is_ok());
    d.stop();
}
