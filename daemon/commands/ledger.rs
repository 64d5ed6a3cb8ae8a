//! `kithd ledger copy --from sqlite:DIR --to postgresql://…`: moves a one-machine install's
//! ledger into an empty shared PostgreSQL database, all or nothing, so history, answers,
//! pending steps and pauses carry over. The daemon on DIR must be stopped first. Must not
//! change the SQLite ledger.

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
    if SqliteLedger::daemon_running(&dir) {
        return Err(exit::Error::Busy(format!(
            "a kithd is running on `{}`: stop it first, so that nothing changes while it is copied",
            dir.display()
        )));
    }
    let src = SqliteLedger::open_client(&dir)?;
    let dst = PgLedger::open(&url)?;
    let copied = crate::store::sqlite_to_postgres(&src, &dst)?
        .ok_or_else(|| exit::Error::NotEmpty(dst.shown().to_string()))?;
    let _ = writeln!(
        out,
        "copied {} firings, {} deliveries, {} answers, {} steps, {} snoozes, {} pauses and {} used answer links\n\
         from {} into the shared ledger; start kithd with `--ledger` (or KITHD_LEDGER) set to it",
        copied.firings,
        copied.deliveries,
        copied.answers,
        copied.steps,
        copied.snoozes,
        copied.pauses,
        copied.nonces,
        dir.display()
    );
    Ok(exit::OK)
}
