//! `kithd ledger copy --from sqlite:DIR --to postgresql://…`: moves a one-machine install's
//! ledger into an empty shared PostgreSQL database, all or nothing, so history, answers,
//! pending steps and pauses carry over. DIR may be a directory-of-plans daemon's state
//! directory: every plan's ledger (`plans/ID/`) is copied, keyed by its id. The daemon on
//! DIR must be stopped first. Must not change the SQLite ledgers.

use std::io::Write;

use crate::exit;
use crate::store::{PgLedger, Place, SqliteLedger};

pub(crate) fn copy(from: &str, to: &str, out: &mut dyn Write) -> exit::Outcome {
    let bad = |what: &str| exit::Error::BadOption {
        option: if what == "from" { "from" } else { "to" },
        value: String::new(),
        expected: if what == "from" {
            "`sqlite:DIR`, the state directory of the ledger to copy"
        } else {
            "`postgresql://USER@HOST/DATABASE`, an empty database"
        },
    };
    let Ok(Place::Sqlite(dir)) = Place::parse(Some(from), std::path::Path::new(".")) else {
        return Err(bad("from"));
    };
    let Ok(Place::Postgres(url)) = Place::parse(Some(to), std::path::Path::new(".")) else {
        return Err(bad("to"));
    };
    // A directory of plans' daemon keeps a ledger per plan under `plans/ID/`.
    let plans = dir.join("plans");
    let places: Vec<(Option<String>, std::path::PathBuf)> =
        if !dir.join("kithd.db").exists() && plans.is_dir() {
            let mut ids: Vec<String> = std::fs::read_dir(&plans)
                .map_err(|e| exit::Error::Busy(format!("can't read `{}`: {e}", plans.display())))?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|id| crate::vocab::is_plan_id(id))
                .collect();
            ids.sort();
            ids.into_iter()
                .map(|id| (Some(id.clone()), plans.join(id)))
                .collect()
        } else {
            vec![(None, dir.clone())]
        };
    let mut sources = Vec::new();
    for (plan, place) in places {
        if SqliteLedger::daemon_running(&place) {
            return Err(exit::Error::Busy(format!(
                "a kithd is running on `{}`: stop it first, so that nothing changes while it is copied",
                dir.display()
            )));
        }
        let src = SqliteLedger::open_client(&place)?.for_plan(plan.as_deref());
        sources.push((plan, src));
    }
    let dst = PgLedger::open(&url)?;
    let copied = crate::store::sqlite_to_postgres(&sources, &dst)?
        .ok_or_else(|| exit::Error::NotEmpty(dst.shown().to_string()))?;
    let _ = writeln!(
        out,
        "copied {} firings, {} deliveries, {} answers, {} steps, {} snoozes, {} pauses and {} used answer links\n\
         from {}{} into the shared ledger; start kithd with `--ledger` (or KITHD_LEDGER) set to it",
        copied.firings,
        copied.deliveries,
        copied.answers,
        copied.steps,
        copied.snoozes,
        copied.pauses,
        copied.nonces,
        dir.display(),
        match sources.len() {
            1 if sources[0].0.is_none() => String::new(),
            n => format!(" ({n} plans)"),
        }
    );
    Ok(exit::OK)
}
