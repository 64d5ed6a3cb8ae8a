//! `[server]` follows the plan on reload (issue 10, sections 2 and 3): adding it starts the
//! answer server, removing it stops it, a changed `listen` rebinds, a port that is taken
//! refuses the reload (old plan and server keep running), and a new `answer_key` keeps the
//! old key's links valid until they expire.

use std::time::Duration;

use crate::daemon::{Daemon, cron_in, project, receiver, wait_for, webhook};
use crate::support::free_port;

const KEY: &str = "0123456789abcdef0123456789abcdef-first-key";
const KEY2: &str = "fedcba9876543210fedcba9876543210-second-key";

/// A plan, with `[server]` listening on `127.0.0.1:PORT` when given (0: a port the system
/// picks, reported in the log). Links say `http://127.0.0.1:0`; `at` points one at a server.
fn plan(uri: &str, server: Option<u16>, items: &str) -> String {
    let server = server
        .map(|p| {
            format!("[server]\nlisten = \"127.0.0.1:{p}\"\npublic_url = \"http://127.0.0.1:0\"\n")
        })
        .unwrap_or_default();
    format!(
        "[person]\nname = \"Alex\"\ntimezone = \"UTC\"\nreach = [\"me\"]\n\n{server}\n{}\n{items}",
        webhook("me", &format!("{uri}/me"), "")
    )
}

/// Waits until `needle` appears `n` times in the daemon's log.
fn wait_count(d: &Daemon, needle: &str, n: usize) {
    for _ in 0..100 {
        if d.logs().matches(needle).count() >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("`{needle}` not seen {n} times:\n{}", d.logs());
}

/// `link` pointed at the answer server at `base`.
fn at(link: &str, base: &str) -> String {
    link.replacen("http://127.0.0.1:0", base, 1)
}

async fn get(url: &str) -> Result<u16, String> {
    reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16())
        .map_err(|e| e.to_string())
}

fn checkin(cron: &str) -> String {
    format!(
        "[[checkin]]\nid = \"c\"\ncron = \"{cron}\"\nexpect_reply_within = \"1h\"\nmessage = \"How are you? {{answer_url}}\"\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_added_rebound_refused_and_removed_on_reload() {
    let sink = receiver().await;
    let dir = project(&plan(&sink.uri(), None, ""));
    let env = [("KITHD_SECRET_ANSWER_KEY", KEY)];
    let d = Daemon::start(dir.path(), &env);
    d.wait_log("Ready.", Duration::from_secs(10));
    // Added: the listener starts with the reload, before any link is sent.
    std::fs::write(dir.path().join("plan.toml"), plan(&sink.uri(), Some(0), "")).unwrap();
    d.hup();
    d.wait_log("Plan reloaded.", Duration::from_secs(5));
    let first = d.answer_base();
    assert_eq!(get(&format!("{first}/nothing")).await, Ok(404));
    // Rebinding needs a second, named port: one outside the range the system hands out
    // for port 0, so no other test's server can be given it meanwhile.
    let p2 = free_port();
    // Changed `listen`: rebound.
    std::fs::write(
        dir.path().join("plan.toml"),
        plan(&sink.uri(), Some(p2), ""),
    )
    .unwrap();
    d.hup();
    d.wait_log("Answer server stopped.", Duration::from_secs(5));
    assert_eq!(
        get(&format!("http://127.0.0.1:{p2}/nothing")).await,
        Ok(404)
    );
    assert!(get(&format!("{first}/nothing")).await.is_err());
    // A port that is taken: the reload is refused; the old plan and server keep running.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let p3 = taken.local_addr().unwrap().port();
    std::fs::write(
        dir.path().join("plan.toml"),
        plan(&sink.uri(), Some(p3), ""),
    )
    .unwrap();
    d.hup();
    d.wait_log("The new plan can't be applied", Duration::from_secs(5));
    assert!(
        d.logs()
            .contains(&format!("can't listen on 127.0.0.1:{p3}")),
        "{}",
        d.logs()
    );
    assert_eq!(
        get(&format!("http://127.0.0.1:{p2}/nothing")).await,
        Ok(404)
    );
    drop(taken);
    // Removed: stopped.
    std::fs::write(dir.path().join("plan.toml"), plan(&sink.uri(), None, "")).unwrap();
    d.hup();
    wait_count(&d, "Answer server stopped.", 2);
    assert!(
        get(&format!("http://127.0.0.1:{p2}/nothing"))
            .await
            .is_err()
    );
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_answer_key_keeps_old_links_valid() {
    let sink = receiver().await;
    let (_, cron) = cron_in(2);
    let dir = project(&plan(&sink.uri(), Some(0), &checkin(&cron)));
    let creds = dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("answer_key"), KEY).unwrap();
    let env = [("CREDENTIALS_DIRECTORY", creds.to_str().unwrap())];
    let d = Daemon::start(dir.path(), &env);
    d.wait_log("Ready.", Duration::from_secs(10));
    let got = wait_for(&sink, "/me", 1, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 1, "{}", d.logs());
    let text = got[0]["text"].as_str().unwrap();
    let old_link_path = text[text.find("http://").unwrap()..].trim().to_string();
    let old_link = at(&old_link_path, &d.answer_base());
    assert_eq!(get(&old_link).await, Ok(200));
    // The key is rotated and the plan reloaded.
    std::fs::write(creds.join("answer_key"), KEY2).unwrap();
    d.hup();
    d.wait_log("Plan reloaded.", Duration::from_secs(5));
    assert_eq!(
        get(&old_link).await,
        Ok(200),
        "a link signed with the old key"
    );
    // A link altered in its sealed part is still refused.
    let mut forged: Vec<char> = old_link.chars().collect();
    let i = old_link.rfind('/').unwrap() + 20;
    forged[i] = if forged[i] == 'A' { 'B' } else { 'A' };
    let forged: String = forged.into_iter().collect();
    assert_eq!(get(&forged).await, Ok(404));
    let (code, _, _) = d.stop();
    assert_eq!(code, Some(0));
    // Across a restart (systemd 252 passes new credentials only then): the old key is
    // accepted while it is given as `answer_key_previous`, and not once it is gone.
    std::fs::write(creds.join("answer_key_previous"), KEY).unwrap();
    let d = Daemon::start(dir.path(), &env);
    // Stopped below: SIGTERM before the loop's handlers are in place would end it by the
    // signal's default action instead.
    d.wait_log("Ready.", Duration::from_secs(10));
    let old_link = at(&old_link_path, &d.answer_base());
    assert_eq!(get(&old_link).await, Ok(200));
    assert_eq!(d.stop().0, Some(0));
    std::fs::remove_file(creds.join("answer_key_previous")).unwrap();
    let d = Daemon::start(dir.path(), &env);
    // Stopped below: SIGTERM before the loop's handlers are in place would end it by the
    // signal's default action instead.
    d.wait_log("Ready.", Duration::from_secs(10));
    let old_link = at(&old_link_path, &d.answer_base());
    assert_eq!(
        get(&old_link).await,
        Ok(404),
        "the rotated-out key is no longer accepted"
    );
    assert_eq!(d.stop().0, Some(0));
}
