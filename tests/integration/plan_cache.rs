//! The validated copy of a large plan, through `kithd run`: kept in the state directory
//! (0600), read on a restart with the plan unchanged (and the plan read from it delivers),
//! and ignored once the plan changes or the copy is damaged.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::daemon::{Daemon, canary, cron_in, plan, project, receiver, wait_canary, webhook};

const READ: &str = "The plan is unchanged: read its validated copy.";
const KEPT: &str = "Kept a validated copy of the plan.";

/// A plan past the size from which copies are kept: ~15,000 check-ins on 1 January.
fn large(channels: &str, extra: &str) -> String {
    let mut items = String::new();
    let mut i = 0;
    while items.len() < kithd::plan_cache::MIN_PLAN_BYTES {
        items.push_str(&format!(
            "[[checkin]]\nid = \"n{i}\"\ncron = \"0 3 1 1 *\"\nmessage = \"Happy new year\"\n\n"
        ));
        i += 1;
    }
    plan(&["hook"], channels, &format!("{extra}\n{items}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_with_the_plan_unchanged_reads_its_copy_and_still_delivers() {
    let server = receiver().await;
    let hook = webhook("hook", &format!("{}/hook", server.uri()), "");
    // The canary fires after both starts below: the second run delivers it from the copy.
    let (at, _) = cron_in(20);
    let dir = project(&large(&hook, &canary(at)));
    let env = [("RUST_LOG", "info,kithd::plan_cache=debug")];
    let first = Daemon::start(dir.path(), &env);
    first.wait_log(KEPT, Duration::from_secs(15));
    assert!(!first.logs().contains(READ));
    let (code, _, _) = first.stop();
    assert_eq!(code, Some(0));
    let copy = dir.path().join("state").join(kithd::plan_cache::FILE);
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the copy holds the plan: health data");

    let second = Daemon::start(dir.path(), &env);
    second.wait_log("Ready.", Duration::from_secs(15));
    assert!(second.logs().contains(READ), "{}", second.logs());
    assert!(!second.logs().contains(KEPT));
    wait_canary(&server, "/hook", Duration::from_secs(40)).await;
    second.stop();

    // Damaged: read afresh (and a whole copy kept again).
    let mut bytes = std::fs::read(&copy).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&copy, &bytes).unwrap();
    let third = Daemon::start(dir.path(), &env);
    third.wait_log(KEPT, Duration::from_secs(15));
    assert!(!third.logs().contains(READ));
    third.stop();

    // Changed (one comment more): read afresh.
    let text = std::fs::read_to_string(dir.path().join("plan.toml")).unwrap();
    std::fs::write(dir.path().join("plan.toml"), format!("# edited\n{text}")).unwrap();
    let fourth = Daemon::start(dir.path(), &env);
    fourth.wait_log(KEPT, Duration::from_secs(15));
    assert!(!fourth.logs().contains(READ));
    fourth.stop();
}
