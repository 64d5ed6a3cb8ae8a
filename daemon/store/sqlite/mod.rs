//! The SQLite ledger: one file in the state directory, mode 0600, WAL, migrated on open,
//! guarded by a lock file so that two daemons never share it (readers such as `status` do
//! not take the lock). Must not contain scheduling or retry policy.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::schema::{MIGRATIONS, VERSION};
use super::state_dir;
use super::{
    AnswerResult, Delivery, Fence, HealthFacts, HistoryFilter, JournalEntry, Missed, NewDelivery,
    NewFiring, OpenFiring, Queue, Reports, SentMark, SnoozeResult, State, Steps, StoreError, Watch,
};
use crate::clock::{Clock, SystemClock};
use crate::vocab::{ALL_CLEAR_KEY, ESCALATE_KEY_PREFIX, Kind, MAIN_KEY, Pause, SELF_ID};

mod access;
mod checkpoint;
mod consents;
mod keeping;
mod queue;
mod reports;
mod steps;

const DB_FILE: &str = "kithd.db";

/// The state directory with every symlink in its path resolved.
fn canonical(dir: &Path) -> Result<PathBuf, StoreError> {
    std::fs::canonicalize(dir).map_err(|source| StoreError::StateDir {
        path: dir.to_path_buf(),
        source,
    })
}

/// An error opening or checking the ledger: damage only when SQLite says so; a read-only
/// file or directory, or one kithd may not open, is said as such.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
        Some(ErrorCode::ReadOnly) => StoreError::ReadOnly(path.to_path_buf()),
        _ => StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        },
    }
}

pub(crate) struct SqliteLedger {
    conn: Mutex<Connection>,
    /// Stamps `created`/`updated`; the system clock unless a test gives another.
    clock: Arc<dyn Clock>,
    path: PathBuf,
    _lock: Option<File>,
    /// The plan's id when it is one of a directory of plans (each has a ledger file of
    /// its own, and its delivery ids include the id).
    pub(in crate::store) scope: Option<String>,
    /// The daemon's ledger: checkpoints on a thread of their own (see `checkpoint`).
    checkpoints: Option<checkpoint::Checkpointer>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

const DELIVERY_COLUMNS: &str = "id, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, updated, sent_at, claim, uncertain, consent";
/// The columns `delivery` reads (the index of a column selected after them).
const DELIVERY_COLUMN_COUNT: usize = 19;
/// The condition under which a claim's outcome may still be recorded.
const FENCED: &str = "id = ?1 AND claim = ?2 AND state = 'pending'";

/// The channels that have pending deliveries: a skip scan of the (state, channel, …)
/// index, one lookup per channel however long each one's backlog.
fn pending_channels(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "WITH RECURSIVE ch(c) AS (
            SELECT (SELECT MIN(channel) FROM deliveries WHERE state = 'pending')
            UNION ALL
            SELECT (SELECT MIN(channel) FROM deliveries WHERE state = 'pending' AND channel > ch.c)
            FROM ch WHERE ch.c IS NOT NULL
        ) SELECT c FROM ch WHERE c IS NOT NULL",
    )?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

/// Most deliveries of one channel claimed in one pass.
const CLAIM_MAX: usize = 4096;
/// `mark_sent` under the fence (see `FENCED`).
const MARK_SENT: &str = "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, gateway_id = ?3, sent_at = ?4, updated = ?4, claimed = 0 WHERE id = ?1 AND claim = ?2 AND state = 'pending'";

fn delivery(row: &Row) -> rusqlite::Result<Delivery> {
    let state: String = row.get(8)?;
    Ok(Delivery {
        id: row.get(0)?,
        item: row.get(1)?,
        kind: row.get(2)?,
        purpose: row.get(3)?,
        scheduled: from_ms(row.get(4)?),
        recipient: row.get(5)?,
        channel: row.get(6)?,
        channel_index: row.get(7)?,
        state: State::parse(&state).unwrap_or(State::Pending),
        due: from_ms(row.get(9)?),
        attempts: row.get(10)?,
        late: row.get::<_, i64>(11)? != 0,
        last_error: row.get(12)?,
        gateway_id: row.get(13)?,
        updated: from_ms(row.get(14)?),
        sent_at: row.get::<_, Option<i64>>(15)?.map(from_ms),
        claim: row.get(16)?,
        uncertain: row.get::<_, i64>(17)? != 0,
        consent: row.get(18)?,
    })
}

/// Records a firing once (a second record of the same item, instant and purpose is
/// ignored) with its deliveries and, the first time, its nag/escalation steps. Returns the
/// ids of the deliveries that were new. Runs inside the caller's transaction.
fn insert_firing(
    conn: &Connection,
    firing: &NewFiring,
    deliveries: &[NewDelivery],
    outcome: &str,
    now: i64,
) -> rusqlite::Result<Vec<String>> {
    let inserted = conn.prepare_cached(
        "INSERT INTO firings (item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap, alert_on) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (item, scheduled, purpose) DO NOTHING",
    )?
    .execute(params![firing.item, firing.kind, firing.purpose, ms(firing.scheduled), now, outcome, firing.deadline.map(ms), firing.snooze_cap.map(|c| c.num_seconds()), firing.alert_on.map(|a| a.key())])?;
    let firing_id: i64 = conn
        .prepare_cached(
            "SELECT id FROM firings WHERE item = ?1 AND scheduled = ?2 AND purpose = ?3",
        )?
        .query_row(
            params![firing.item, ms(firing.scheduled), firing.purpose],
            |r| r.get(0),
        )?;
    let mut new = Vec::new();
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, late, created, updated)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?11, ?12, ?12)
         ON CONFLICT (id) DO NOTHING",
    )?;
    for d in deliveries {
        let n = stmt.execute(params![
            d.id,
            firing_id,
            firing.item,
            firing.kind,
            firing.purpose,
            ms(firing.scheduled),
            d.recipient,
            d.channel,
            d.channel_index,
            ms(d.due),
            d.late as i64,
            now
        ])?;
        if n == 1 {
            new.push(d.id.clone());
        }
    }
    if inserted == 1 {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO watches (firing, action, step, recipient, due, state) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')
             ON CONFLICT (firing, action, step) DO NOTHING",
        )?;
        for w in &firing.watches {
            stmt.execute(params![firing_id, w.action, w.step, w.recipient, ms(w.due)])?;
        }
    }
    Ok(new)
}

impl SqliteLedger {
    /// Opens (creating and migrating) the ledger in `state_dir` for the daemon: takes the
    /// lock file so a second daemon on the same directory fails clearly.
    pub(crate) fn open(state_dir: &Path) -> Result<Self, StoreError> {
        if let Some(warning) = state_dir::prepare(state_dir)? {
            tracing::warn!("{warning}");
        }
        // The directory may be a symlink (DynamicUser=); nothing inside it may be. SQLite's
        // NOFOLLOW refuses a symlink anywhere in the path, so name the directory resolved.
        let path = canonical(state_dir)?.join(DB_FILE);
        // Created 0600 before SQLite does (its -wal and -shm files copy the mode), never
        // through a symlink; the daemon's lock is on this file itself.
        let file = state_dir::open_file(&path, true)?;
        let lock = state_dir::lock(file, state_dir)?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| state_dir::refuse_symlink(&path, e))?;
        state_dir::check_companions(&path)?;
        let mut ledger = Self::connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            Some(lock),
            true,
        )?;
        // Without the thread, the connection keeps checkpointing itself.
        match checkpoint::Checkpointer::start(&ledger.path) {
            Ok(c) => {
                ledger
                    .conn()
                    .execute_batch("PRAGMA wal_autocheckpoint=0;")?;
                ledger.checkpoints = Some(c);
            }
            Err(e) => {
                tracing::warn!(error = %e, "Ledger checkpoints run on the writing thread.")
            }
        }
        Ok(ledger)
    }

    /// Opens the SQLite file at `path` with `flags` and checks it (and, when `writable`,
    /// switches to WAL and migrates).
    fn connect(
        path: PathBuf,
        flags: OpenFlags,
        lock: Option<File>,
        writable: bool,
    ) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| classify(&path, e))?;
        let ledger = Self {
            conn: Mutex::new(conn),
            clock: Arc::new(SystemClock),
            path,
            _lock: lock,
            scope: None,
            checkpoints: None,
        };
        ledger.prepare(writable)?;
        Ok(ledger)
    }

    fn existing(state_dir: &Path) -> Result<PathBuf, StoreError> {
        let path = canonical(state_dir)
            .unwrap_or_else(|_| state_dir.to_path_buf())
            .join(DB_FILE);
        if !path.exists() {
            return Err(StoreError::Open {
                path,
                message: "no ledger here yet (has `kithd run` used this state directory?)".into(),
            });
        }
        Ok(path)
    }

    /// Whether a daemon holds the lock on `state_dir` now. Taking the lock for a moment to
    /// find out is harmless: a daemon starting in that moment fails clearly (exit 69). Call
    /// it before opening the ledger in the same process.
    pub(crate) fn daemon_running(state_dir: &Path) -> bool {
        state_dir::locked(state_dir, DB_FILE)
    }

    /// Opens an existing ledger read-only, for `status` and `history` while the daemon runs.
    pub(crate) fn open_read_only(state_dir: &Path) -> Result<Self, StoreError> {
        let path = Self::existing(state_dir)?;
        state_dir::check_companions(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        match Self::connect(path.clone(), flags, None, false) {
            // A read-only directory without a write-ahead log (no daemon writing): SQLite
            // can't create its shared-memory file there, so read the file as immutable.
            Err(StoreError::ReadOnly(_) | StoreError::Open { .. })
                if !PathBuf::from(format!("{}-wal", path.display())).exists() =>
            {
                let abs = std::path::absolute(&path).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                let mut uri = url::Url::from_file_path(&abs).map_err(|_| StoreError::Open {
                    path: path.clone(),
                    message: "not an absolute path".into(),
                })?;
                uri.set_query(Some("immutable=1"));
                Self::connect(
                    PathBuf::from(uri.as_str()),
                    flags | OpenFlags::SQLITE_OPEN_URI,
                    None,
                    false,
                )
            }
            other => other,
        }
    }

    /// Opens an existing ledger for writing without the daemon's lock, for `kithd ack`
    /// while the daemon runs (SQLite serialises the writers).
    pub(crate) fn open_client(state_dir: &Path) -> Result<Self, StoreError> {
        let ledger = Self::connect(
            Self::existing(state_dir)?,
            OpenFlags::SQLITE_OPEN_READ_WRITE,
            None,
            false,
        )?;
        let version: i64 = ledger
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version != VERSION {
            return Err(StoreError::Open {
                path: ledger.path.clone(),
                message: format!(
                    "schema {version}, this kithd needs {VERSION}: start `kithd run` once to migrate it"
                ),
            });
        }
        Ok(ledger)
    }

    /// The ledger of the plan `id` of a directory of plans: the delivery ids it makes
    /// (all-clears, snoozes) include the id, as the plan's own do.
    pub(crate) fn for_plan(mut self, id: Option<&str>) -> Self {
        self.scope = id.map(str::to_string);
        self
    }

    /// Reads time from `clock` instead of the system clock.
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn now_ms(&self) -> i64 {
        ms(self.clock.now())
    }

    pub(in crate::store) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock can't leave a half-applied transaction (SQLite
        // rolls it back), so a poisoned lock is safe to reuse.
        if let Some(c) = &self.checkpoints {
            c.nudge();
        }
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn prepare(&self, writable: bool) -> Result<(), StoreError> {
        let corrupt = |e: rusqlite::Error| classify(&self.path, e);
        let mut conn = self.conn();
        conn.busy_timeout(Duration::from_secs(5))?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(corrupt)?;
        if check != "ok" {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                message: check,
            });
        }
        if version > VERSION {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known: VERSION,
            });
        }
        if !writable {
            return Ok(());
        }
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Open {
                path: self.path.clone(),
                message: format!("can't switch to WAL mode (got {mode})"),
            });
        }
        // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power
        // loss can lose the last commits.
        conn.execute_batch(
            "PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA wal_autocheckpoint=4000;",
        )?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
