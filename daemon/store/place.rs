//! Where the ledger is: `--ledger`/`KITHD_LEDGER` read once (`sqlite:DIR`,
//! `postgresql://…`, or the state directory's SQLite file), and opening it for a command.
//! Must not hold queries.

use std::path::PathBuf;

use super::{Ledger, PgLedger, SqliteLedger, StoreError};

/// Where the ledger is: SQLite in a state directory (one machine, the default), or a
/// PostgreSQL database several instances share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Place {
    /// `--ledger`/`KITHD_LEDGER` as given (`sqlite:DIR`, `sqlite:DIR/kithd.db`,
    /// `postgresql://…`), else the state directory's SQLite file.
    pub(crate) fn parse(
        given: Option<&str>,
        state_dir: &std::path::Path,
    ) -> Result<Self, StoreError> {
        let Some(url) = given.map(str::trim).filter(|s| !s.is_empty()) else {
            return Ok(Place::Sqlite(state_dir.to_path_buf()));
        };
        if url.starts_with("postgresql://") || url.starts_with("postgres://") {
            return Ok(Place::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            let path = PathBuf::from(path.trim_start_matches("//"));
            return Ok(match path.file_name().and_then(|n| n.to_str()) {
                Some("kithd.db") => {
                    Place::Sqlite(path.parent().map(PathBuf::from).unwrap_or_default())
                }
                _ => Place::Sqlite(path),
            });
        }
        Err(StoreError::Open {
            path: PathBuf::from("--ledger"),
            message: "give `sqlite:DIR` or `postgresql://USER@HOST/DATABASE`".into(),
        })
    }

    /// Opens the ledger for a command that reads or answers while the daemon runs; `plan`
    /// is one plan of a directory's daemon.
    pub(crate) fn open_client(
        &self,
        read_only: bool,
        plan: Option<&str>,
    ) -> Result<Box<dyn Ledger>, StoreError> {
        Ok(match self {
            Place::Sqlite(dir) if read_only => {
                Box::new(SqliteLedger::open_read_only(dir)?.for_plan(plan))
            }
            Place::Sqlite(dir) => Box::new(SqliteLedger::open_client(dir)?.for_plan(plan)),
            Place::Postgres(url) => Box::new(PgLedger::open(url)?.for_plan(plan)),
        })
    }
}
