//! `kithd check PLAN|DIR`: the load step that `run` uses (plan, plugins, a dry run of each
//! used channel, and the secrets unless `--offline`), without touching the network. Prints
//! every problem with file:line:column; exit 0 valid, 65 invalid, 66 unreadable. A
//! directory is every plan in it, each checked on its own (65 if any has problems). Must
//! not send anything or write state.

use std::io::Write;
use std::path::Path;

use crate::exit;
use crate::load::Secrets;
use crate::plugin::SecretStore;

pub(crate) fn run(
    plan_path: &Path,
    plugin_dir: &Path,
    offline: bool,
    now: chrono::DateTime<chrono::Utc>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> exit::Outcome {
    if plan_path.is_dir() {
        let plans = crate::plan_dir::load_dir(plan_path, plugin_dir, offline, true, now, err)?;
        for p in &plans {
            if let Ok(loaded) = &p.loaded {
                ok_line(loaded, offline, out);
            }
        }
        return Ok(crate::plan_dir::report_invalid(&plans, err));
    }
    let store = SecretStore::from_env();
    let secrets = if offline {
        Secrets::Offline
    } else {
        Secrets::Check(&store)
    };
    let loaded = super::load(plan_path, plugin_dir, secrets, true, now, err)?;
    ok_line(&loaded, offline, out);
    Ok(exit::OK)
}

/// `FILE: ok (3 items, 1 contact, …)`.
fn ok_line(loaded: &crate::load::Loaded, offline: bool, out: &mut dyn Write) {
    let plan = &loaded.snapshot.plan;
    let _ = writeln!(
        out,
        "{}: ok ({} item{}, {} contact{}, {} channel{}, {} warning{}){}",
        loaded.source.name,
        plan.items.len(),
        plural(plan.items.len()),
        plan.contacts.len(),
        plural(plan.contacts.len()),
        plan.channels.len(),
        plural(plan.channels.len()),
        loaded.warnings.len(),
        plural(loaded.warnings.len()),
        if offline { "; secrets not checked" } else { "" },
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
