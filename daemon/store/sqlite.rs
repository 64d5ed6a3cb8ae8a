//! The SQLite ledger: one file in the state directory, mode 0600, WAL, migrated on open,
//! guarded by a lock file so that two daemons never share it (readers such as `status` do
//! not take the lock). Must not contain scheduling or retry policy.

use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};

use super::schema::{MIGRATIONS, VERSION};
use super::state_dir;
use super::{
    AnswerResult, Delivery, Fence, HealthFacts, HistoryFilter, JournalEntry, Ledger, Missed,
    NewDelivery, NewFiring, OpenFiring, SentMark, State, StoreError, Watch,
};

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

pub struct SqliteLedger {
    conn: Mutex<Connection>,
    path: PathBuf,
    _lock: Option<File>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(v).single().unwrap_or_default()
}

fn now_ms() -> i64 {
    ms(Utc::now())
}

const DELIVERY_COLUMNS: &str = "id, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, updated, sent_at, claim";
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
        "INSERT INTO firings (item, kind, purpose, scheduled, recorded, outcome, deadline) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (item, scheduled, purpose) DO NOTHING",
    )?
    .execute(params![firing.item, firing.kind, firing.purpose, ms(firing.scheduled), now, outcome, firing.deadline.map(ms)])?;
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
    pub fn open(state_dir: &Path) -> Result<Self, StoreError> {
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
        Self::connect(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
            Some(lock),
            true,
        )
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
            path,
            _lock: lock,
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
    pub fn daemon_running(state_dir: &Path) -> bool {
        state_dir::locked(state_dir, DB_FILE)
    }

    /// Opens an existing ledger read-only, for `status` and `history` while the daemon runs.
    pub fn open_read_only(state_dir: &Path) -> Result<Self, StoreError> {
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
    pub fn open_client(state_dir: &Path) -> Result<Self, StoreError> {
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

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock can't leave a half-applied transaction (SQLite
        // rolls it back), so a poisoned lock is safe to reuse.
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
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(m)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }
}

impl Ledger for SqliteLedger {
    fn record_firings(
        &self,
        batch: &[(NewFiring, Vec<NewDelivery>)],
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = now_ms();
        let mut new = Vec::new();
        for (firing, deliveries) in batch {
            new.extend(insert_firing(&tx, firing, deliveries, "dispatched", now)?);
        }
        tx.commit()?;
        Ok(new)
    }

    fn record_missed(&self, firing: &NewFiring) -> Result<(), StoreError> {
        insert_firing(&self.conn(), firing, &[], "missed", now_ms())?;
        Ok(())
    }

    fn last_scheduled(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT item, MAX(scheduled) FROM firings GROUP BY item")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, from_ms(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        room: &mut dyn FnMut(&str) -> usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut claimed = Vec::new();
        // Channel by channel, each in due order and no more than it has room for: a
        // backlog on one channel is neither read in full nor hides another's deliveries.
        for channel in pending_channels(&tx)? {
            let free = room(&channel).min(CLAIM_MAX);
            if free == 0 {
                continue;
            }
            let rows: Vec<Delivery> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = 'pending' AND channel = ?1 AND due <= ?2 ORDER BY due, id LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![channel, ms(now), free as i64], delivery)?;
                rows.collect::<Result<_, _>>()?
            };
            let mut claim = tx.prepare_cached(
                "UPDATE deliveries SET due = ?2, claimed = 1, claim = claim + 1 WHERE id = ?1",
            )?;
            for mut d in rows {
                claim.execute(params![d.id, ms(lease_until)])?;
                d.claim += 1;
                d.due = lease_until;
                claimed.push(d);
            }
        }
        tx.commit()?;
        Ok(claimed)
    }

    fn renew(
        &self,
        held: &[Fence],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut lost = Vec::new();
        {
            let mut stmt = tx.prepare_cached(&format!(
                "UPDATE deliveries SET due = ?3 WHERE {FENCED} AND claimed = 1 AND due > ?4"
            ))?;
            for f in held {
                if stmt.execute(params![f.id, f.claim, ms(lease_until), ms(now)])? == 0 {
                    lost.push(f.clone());
                }
            }
        }
        tx.commit()?;
        Ok(lost)
    }

    fn release_claims(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE deliveries SET due = MIN(due, ?1), claimed = 0 WHERE state = 'pending' AND claimed = 1",
            params![ms(now)],
        )?)
    }

    fn next_due(&self, except_channels: &[String]) -> Result<Option<DateTime<Utc>>, StoreError> {
        let conn = self.conn();
        let mut next: Option<i64> = None;
        for channel in pending_channels(&conn)? {
            if except_channels.contains(&channel) {
                continue;
            }
            let mut stmt = conn.prepare_cached(
                "SELECT MIN(due) FROM deliveries WHERE state = 'pending' AND channel = ?1",
            )?;
            let due: Option<i64> = stmt.query_row(params![channel], |r| r.get(0))?;
            next = match (next, due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(next.map(from_ms))
    }

    fn mark_sent(
        &self,
        fence: &Fence,
        gateway_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(MARK_SENT)?;
        let n = stmt.execute(params![fence.id, fence.claim, gateway_id, ms(at)])?;
        Ok(n == 1)
    }

    fn mark_sent_all(&self, marks: &[SentMark]) -> Result<Vec<bool>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut done = Vec::with_capacity(marks.len());
        {
            let mut stmt = tx.prepare_cached(MARK_SENT)?;
            for m in marks {
                let n = stmt.execute(params![m.fence.id, m.fence.claim, m.gateway_id, ms(m.at)])?;
                done.push(n == 1);
            }
        }
        tx.commit()?;
        Ok(done)
    }

    fn mark_retry(
        &self,
        fence: &Fence,
        due: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            &format!("UPDATE deliveries SET attempts = attempts + 1, due = ?3, last_error = ?4, updated = ?5, claimed = 0 WHERE {FENCED}"),
            params![fence.id, fence.claim, ms(due), error, now_ms()],
        )?;
        Ok(n == 1)
    }

    fn fail_over(
        &self,
        fence: &Fence,
        error: &str,
        next: Option<&NewDelivery>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = now_ms();
        let state = if next.is_some() { "failed" } else { "dead" };
        let n = tx.execute(
            &format!("UPDATE deliveries SET state = ?3, attempts = attempts + 1, last_error = ?4, updated = ?5, claimed = 0 WHERE {FENCED}"),
            params![fence.id, fence.claim, state, error, now],
        )?;
        if n == 0 {
            return Ok(false);
        }
        if let Some(n) = next {
            tx.execute(
                "INSERT INTO deliveries (id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, late, created, updated)
                 SELECT ?2, firing, item, kind, purpose, scheduled, ?3, ?4, ?5, 'pending', ?6, late, ?7, ?7 FROM deliveries WHERE id = ?1
                 ON CONFLICT (id) DO NOTHING",
                params![fence.id, n.id, n.recipient, n.channel, n.channel_index, ms(n.due), now],
            )?;
        }
        tx.commit()?;
        Ok(true)
    }

    fn cancel(&self, fence: &Fence, reason: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            &format!("UPDATE deliveries SET state = 'cancelled', last_error = ?3, updated = ?4, claimed = 0 WHERE {FENCED}"),
            params![fence.id, fence.claim, reason, now_ms()],
        )?;
        Ok(n == 1)
    }

    fn in_state(&self, state: State, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let order = if state == State::Pending {
            "due ASC"
        } else {
            "updated DESC"
        };
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = ?1 ORDER BY {order} LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![state.as_str(), limit as i64], delivery)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn history(&self, f: &HistoryFilter) -> Result<Vec<Delivery>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE scheduled >= ?1 AND (?2 IS NULL OR item = ?2)
             ORDER BY scheduled, created, id LIMIT ?3"
        ))?;
        let rows = stmt.query_map(
            params![
                f.since.map(ms).unwrap_or(i64::MIN),
                f.item,
                f.limit.map(|l| l as i64).unwrap_or(-1)
            ],
            delivery,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn missed(&self, f: &HistoryFilter) -> Result<Vec<Missed>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT item, kind, purpose, scheduled FROM firings WHERE outcome = 'missed' AND scheduled >= ?1 AND (?2 IS NULL OR item = ?2)
             ORDER BY scheduled",
        )?;
        let rows = stmt.query_map(params![f.since.map(ms).unwrap_or(i64::MIN), f.item], |r| {
            Ok(Missed {
                item: r.get(0)?,
                kind: r.get(1)?,
                purpose: r.get(2)?,
                scheduled: from_ms(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn health(&self, since: DateTime<Utc>) -> Result<HealthFacts, StoreError> {
        let conn = self.conn();
        let dead_letters: i64 = conn.query_row(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND updated >= ?1",
            params![ms(since)],
            |r| r.get(0),
        )?;
        // SQLite returns the bare columns of the row that holds the MAX.
        let mut stmt = conn.prepare_cached(
            "SELECT channel, state, MAX(updated) FROM deliveries WHERE state IN ('sent', 'failed', 'dead') GROUP BY channel ORDER BY channel",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut failing_channels = Vec::new();
        for row in rows {
            let (channel, state) = row?;
            if state != "sent" {
                failing_channels.push(channel);
            }
        }
        Ok(HealthFacts {
            dead_letters: dead_letters as u64,
            failing_channels,
        })
    }

    fn last_errors(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT channel, updated, last_error FROM deliveries d WHERE last_error IS NOT NULL AND updated =
               (SELECT MAX(updated) FROM deliveries e WHERE e.channel = d.channel AND e.last_error IS NOT NULL)
             GROUP BY channel ORDER BY channel",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                from_ms(r.get(1)?),
                r.get::<_, String>(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
    fn due_watches(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Watch>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT w.id, f.item, f.kind, f.scheduled, w.action, w.step, w.recipient, w.due
             FROM watches w JOIN firings f ON f.id = w.firing
             WHERE w.state = 'pending' AND w.due <= ?1 ORDER BY w.due, w.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![ms(now), limit as i64], |r| {
            Ok(Watch {
                id: r.get(0)?,
                item: r.get(1)?,
                kind: r.get(2)?,
                scheduled: from_ms(r.get(3)?),
                action: r.get(4)?,
                step: r.get(5)?,
                recipient: r.get(6)?,
                due: from_ms(r.get(7)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn next_watch_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> = self
            .conn()
            .query_row(
                "SELECT MIN(due) FROM watches WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(v.map(from_ms))
    }

    fn run_watch(&self, id: i64, step: &(NewFiring, Vec<NewDelivery>)) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        // Inside the transaction: an answer may have just arrived from another process.
        let still_open: bool = tx.query_row(
            "SELECT w.state = 'pending' AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = w.firing) FROM watches w WHERE w.id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        if !still_open {
            tx.execute(
                "UPDATE watches SET state = 'cancelled' WHERE id = ?1 AND state = 'pending'",
                params![id],
            )?;
            tx.commit()?;
            return Ok(false);
        }
        let (firing, deliveries) = step;
        insert_firing(&tx, firing, deliveries, "dispatched", now_ms())?;
        tx.execute(
            "UPDATE watches SET state = 'done' WHERE id = ?1",
            params![id],
        )?;
        tx.commit()?;
        Ok(true)
    }

    fn cancel_watch(&self, id: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE watches SET state = 'cancelled' WHERE id = ?1 AND state = 'pending'",
            params![id],
        )?;
        Ok(())
    }

    fn open_firing(
        &self,
        item: Option<&str>,
        kinds: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError> {
        let conn = self.conn();
        let kinds_json = serde_json::to_string(kinds).unwrap_or_else(|_| "[]".into());
        let row = conn
            .query_row(
                "SELECT f.id, f.item, f.kind, f.scheduled, f.deadline FROM firings f
                 WHERE f.purpose = 'main' AND f.outcome = 'dispatched' AND f.scheduled <= ?1
                   AND (?2 IS NULL OR f.item = ?2)
                   AND f.kind IN (SELECT value FROM json_each(?3))
                   AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = f.id)
                 ORDER BY f.scheduled DESC, f.id DESC LIMIT 1",
                params![ms(now), item, kinds_json],
                |r| {
                    Ok(OpenFiring {
                        id: r.get(0)?,
                        item: r.get(1)?,
                        kind: r.get(2)?,
                        scheduled: from_ms(r.get(3)?),
                        deadline: r.get::<_, Option<i64>>(4)?.map(from_ms),
                        answered: false,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    fn find_firing(
        &self,
        item: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT f.id, f.item, f.kind, f.scheduled, f.deadline, EXISTS (SELECT 1 FROM answers a WHERE a.firing = f.id)
                 FROM firings f WHERE f.item = ?1 AND f.scheduled = ?2 AND f.purpose = 'main'",
                params![item, ms(scheduled)],
                |r| {
                    Ok(OpenFiring {
                        id: r.get(0)?,
                        item: r.get(1)?,
                        kind: r.get(2)?,
                        scheduled: from_ms(r.get(3)?),
                        deadline: r.get::<_, Option<i64>>(4)?.map(from_ms),
                        answered: r.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(row)
    }

    fn answer(
        &self,
        firing: &OpenFiring,
        value: &str,
        note: Option<&str>,
        via: &str,
        now: DateTime<Utc>,
        all_clear_id: &dyn Fn(&str, &str) -> String,
    ) -> Result<AnswerResult, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let late = firing.deadline.is_some_and(|d| now > d);
        let inserted = tx.execute(
            "INSERT INTO answers (firing, item, kind, scheduled, value, note, via, answered, late) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (firing) DO NOTHING",
            params![firing.id, firing.item, firing.kind, ms(firing.scheduled), value, note, via, ms(now), late as i64],
        )?;
        if inserted == 0 {
            return Ok(AnswerResult::Already);
        }
        tx.execute(
            "UPDATE watches SET state = 'cancelled' WHERE firing = ?1 AND state = 'pending'",
            params![firing.id],
        )?;
        let alerts: Vec<(String, String, String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT id, recipient, channel, state FROM deliveries
                 WHERE item = ?1 AND scheduled = ?2 AND purpose LIKE 'escalate:%' ORDER BY purpose, created",
            )?;
            let rows = stmt.query_map(params![firing.item, ms(firing.scheduled)], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let mut all_clear_to: Vec<(String, String)> = Vec::new();
        for (id, recipient, channel, state) in alerts {
            match state.as_str() {
                "pending" => {
                    tx.execute(
                        "UPDATE deliveries SET state = 'cancelled', last_error = 'answered before it was sent', claimed = 0, updated = ?2 WHERE id = ?1 AND state = 'pending'",
                        params![id, ms(now)],
                    )?;
                }
                "sent" if !all_clear_to.iter().any(|(r, _)| *r == recipient) => {
                    all_clear_to.push((recipient, channel))
                }
                _ => {}
            }
        }
        if !all_clear_to.is_empty() {
            let all_clear = NewFiring::new(
                &firing.item,
                &firing.kind,
                "allclear".into(),
                firing.scheduled,
            );
            let deliveries: Vec<NewDelivery> = all_clear_to
                .iter()
                .map(|(recipient, channel)| NewDelivery {
                    id: all_clear_id(recipient, channel),
                    recipient: recipient.clone(),
                    channel: channel.clone(),
                    channel_index: 0,
                    due: now,
                    late: false,
                })
                .collect();
            insert_firing(&tx, &all_clear, &deliveries, "dispatched", ms(now))?;
        }
        tx.commit()?;
        Ok(AnswerResult::Recorded {
            late,
            all_clear_to: all_clear_to.into_iter().map(|(r, _)| r).collect(),
        })
    }

    fn use_token(&self, nonce: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO used_tokens (nonce, used) VALUES (?1, ?2) ON CONFLICT (nonce) DO NOTHING",
            params![nonce, ms(now)],
        )?;
        Ok(n == 1)
    }

    fn journal(&self, since: DateTime<Utc>) -> Result<Vec<JournalEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT f.item, f.kind, f.scheduled, f.outcome, a.value, COALESCE(a.late, 0), a.via, a.answered
             FROM firings f LEFT JOIN answers a ON a.firing = f.id
             WHERE f.purpose = 'main' AND f.kind IN ('checkin', 'medication') AND f.scheduled >= ?1
             ORDER BY f.scheduled, f.item",
        )?;
        let rows = stmt.query_map(params![ms(since)], |r| {
            Ok(JournalEntry {
                item: r.get(0)?,
                kind: r.get(1)?,
                scheduled: from_ms(r.get(2)?),
                outcome: r.get(3)?,
                value: r.get(4)?,
                late: r.get::<_, i64>(5)? != 0,
                via: r.get(6)?,
                answered: r.get::<_, Option<i64>>(7)?.map(from_ms),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn escalation_counts(&self, since: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        let conn = self.conn();
        let count = |like: &str| -> rusqlite::Result<u64> {
            conn.query_row(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'sent' AND purpose LIKE ?1 AND scheduled >= ?2",
                params![like, ms(since)],
                |r| r.get(0),
            )
        };
        Ok((count("escalate:%")?, count("allclear")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(at: &str) -> NewFiring {
        NewFiring::new("meds", "medication", "main".into(), at.parse().unwrap())
    }

    fn delivery(id: &str, channel: &str, idx: u32, due: &str) -> NewDelivery {
        NewDelivery {
            id: id.into(),
            recipient: "self".into(),
            channel: channel.into(),
            channel_index: idx,
            due: due.parse().unwrap(),
            late: false,
        }
    }

    #[test]
    fn a_lease_taken_over_fences_out_its_old_owner() {
        let dir = tempfile::tempdir().unwrap();
        let l = SqliteLedger::open(dir.path()).unwrap();
        let t0: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let secs = |s| t0 + chrono::Duration::seconds(s);
        let batch = vec![(
            firing("2026-12-01T08:00:00Z"),
            vec![delivery("d1", "sms", 0, "2026-12-01T08:00:00Z")],
        )];
        l.record_firings(&batch).unwrap();
        let all = &mut |_: &str| usize::MAX;
        let old = l.claim_due(t0, secs(2), all).unwrap().remove(0);
        // Renewed while held: not claimable at t0+3 s.
        assert!(
            l.renew(&[old.fence()], secs(1), secs(4))
                .unwrap()
                .is_empty()
        );
        assert!(l.claim_due(secs(3), secs(5), all).unwrap().is_empty());
        // Not renewed in time (the owner stalled): the lease ends and is taken over.
        assert_eq!(
            l.renew(&[old.fence()], secs(5), secs(8)).unwrap(),
            vec![old.fence()]
        );
        let new = l.claim_due(secs(5), secs(7), all).unwrap().remove(0);
        assert!(!l.mark_sent(&old.fence(), Some("old"), secs(6)).unwrap());
        assert!(!l.mark_retry(&old.fence(), secs(9), "x").unwrap());
        assert!(!l.fail_over(&old.fence(), "x", None).unwrap());
        assert!(!l.cancel(&old.fence(), "x").unwrap());
        assert_eq!(l.in_state(State::Pending, 10).unwrap().len(), 1, "not lost");
        assert!(l.mark_sent(&new.fence(), Some("new"), secs(6)).unwrap());
        let sent = l.in_state(State::Sent, 10).unwrap();
        assert_eq!(
            (sent.len(), sent[0].gateway_id.as_deref(), sent[0].attempts),
            (1, Some("new"), 1)
        );
    }

    #[test]
    fn a_full_channel_is_not_claimed_and_does_not_hide_others() {
        let dir = tempfile::tempdir().unwrap();
        let l = SqliteLedger::open(dir.path()).unwrap();
        let mut deliveries: Vec<NewDelivery> = (0..1200)
            .map(|i| delivery(&format!("slow{i:04}"), "slow", 0, "2026-12-01T08:00:00Z"))
            .collect();
        deliveries.push(delivery("fast", "fast", 0, "2026-12-01T08:00:01Z"));
        l.record_firings(&[(firing("2026-12-01T08:00:00Z"), deliveries)])
            .unwrap();
        let now: DateTime<Utc> = "2026-12-01T08:00:02Z".parse().unwrap();
        let lease = now + chrono::Duration::minutes(5);
        let slots = 1;
        let claimed = l
            .claim_due(now, lease, &mut |c| {
                if c == "fast" { usize::MAX } else { slots }
            })
            .unwrap();
        let mut ids: Vec<&str> = claimed.iter().map(|d| d.id.as_str()).collect();
        ids.sort();
        assert_eq!(ids, ["fast", "slow0000"]);
        assert_eq!(l.in_state(State::Pending, 2000).unwrap().len(), 1201);
    }

    #[test]
    fn records_idempotently_and_walks_the_states() {
        let dir = tempfile::tempdir().unwrap();
        let l = SqliteLedger::open(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(DB_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let f = firing("2026-12-01T08:00:00Z");
        let d = delivery("d1", "sms", 0, "2026-12-01T08:00:00Z");
        let batch = vec![(f.clone(), vec![d.clone()])];
        assert_eq!(l.record_firings(&batch).unwrap(), vec!["d1".to_string()]);
        assert!(
            l.record_firings(&batch).unwrap().is_empty(),
            "recorded twice, stored once"
        );
        let now: DateTime<Utc> = "2026-12-01T08:00:01Z".parse().unwrap();
        let lease: DateTime<Utc> = "2026-12-01T08:05:00Z".parse().unwrap();
        let all = &mut |_: &str| usize::MAX;
        let first = l.claim_due(now, lease, all).unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            l.claim_due(now, lease, all).unwrap().is_empty(),
            "a claimed delivery is not handed out twice"
        );
        assert_eq!(l.release_claims(now).unwrap(), 1);
        let again = l.claim_due(now, lease, all).unwrap();
        assert_eq!(again.len(), 1, "a crash's claims come back");
        assert_eq!(again[0].claim, first[0].claim + 1, "each claim fences anew");
        assert!(
            !l.mark_sent(&first[0].fence(), None, now).unwrap(),
            "the crashed run's claim can't complete it"
        );
        assert!(
            l.mark_retry(
                &again[0].fence(),
                "2026-12-01T08:01:00Z".parse().unwrap(),
                "HTTP 500"
            )
            .unwrap()
        );
        assert!(l.claim_due(now, lease, all).unwrap().is_empty());
        assert_eq!(
            l.next_due(&[]).unwrap().unwrap().to_rfc3339(),
            "2026-12-01T08:01:00+00:00"
        );
        assert_eq!(l.next_due(&["sms".into()]).unwrap(), None);
        let later: DateTime<Utc> = "2026-12-01T08:01:30Z".parse().unwrap();
        let retried = l.claim_due(later, lease, all).unwrap();
        let next = delivery("d2", "mail", 1, "2026-12-01T08:01:00Z");
        assert!(
            l.fail_over(&retried[0].fence(), "HTTP 400", Some(&next))
                .unwrap()
        );
        let due = l
            .claim_due("2026-12-01T08:02:00Z".parse().unwrap(), lease, all)
            .unwrap();
        assert_eq!(
            (due.len(), due[0].id.as_str(), due[0].channel.as_str()),
            (1, "d2", "mail")
        );
        assert!(l.fail_over(&due[0].fence(), "HTTP 401", None).unwrap());
        let dead = l.in_state(State::Dead, 10).unwrap();
        assert_eq!((dead.len(), dead[0].attempts), (1, 1));
        assert_eq!(l.in_state(State::Failed, 10).unwrap()[0].attempts, 2);
        assert_eq!(l.last_errors().unwrap().len(), 2);
        assert_eq!(l.last_scheduled().unwrap()[0].0, "meds");
        // A second daemon on the same directory is refused; readers are fine.
        assert!(matches!(
            SqliteLedger::open(dir.path()),
            Err(StoreError::Locked(_))
        ));
        let r = SqliteLedger::open_read_only(dir.path()).unwrap();
        assert_eq!(r.history(&HistoryFilter::default()).unwrap().len(), 2);
    }

    #[test]
    fn answers_cancel_steps_and_queue_all_clears() {
        use crate::store::NewWatch;
        let dir = tempfile::tempdir().unwrap();
        let l = SqliteLedger::open(dir.path()).unwrap();
        let at: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let mut f = NewFiring::new("checkin", "checkin", "main".into(), at);
        f.deadline = Some(at + chrono::Duration::hours(1));
        f.watches = vec![
            NewWatch {
                action: "nag".into(),
                step: 1,
                recipient: "self".into(),
                due: at + chrono::Duration::minutes(15),
            },
            NewWatch {
                action: "escalate".into(),
                step: 0,
                recipient: "sam".into(),
                due: at + chrono::Duration::hours(1),
            },
            NewWatch {
                action: "escalate".into(),
                step: 1,
                recipient: "kim".into(),
                due: at + chrono::Duration::hours(2),
            },
        ];
        l.record_firings(&[(
            f.clone(),
            vec![delivery("d1", "c", 0, "2026-12-01T08:00:00Z")],
        )])
        .unwrap();
        l.record_firings(&[(f, vec![])]).unwrap(); // recorded twice: the steps are not doubled
        let due = l
            .due_watches(at + chrono::Duration::minutes(61), 10)
            .unwrap();
        assert_eq!(due.len(), 2);
        let step = |who: &str, id: &str| {
            (
                NewFiring::new("checkin", "checkin", format!("escalate:{who}"), at),
                vec![NewDelivery {
                    id: id.into(),
                    recipient: who.into(),
                    channel: "c".into(),
                    channel_index: 0,
                    due: at,
                    late: false,
                }],
            )
        };
        assert!(l.run_watch(due[1].id, &step("sam", "e1")).unwrap());
        assert!(
            !l.run_watch(due[1].id, &step("sam", "e1")).unwrap(),
            "a step runs once"
        );
        let lease = at + chrono::Duration::hours(9);
        for d in l
            .claim_due(at + chrono::Duration::hours(3), lease, &mut |_| usize::MAX)
            .unwrap()
        {
            assert!(l.mark_sent(&d.fence(), None, at).unwrap());
        }
        let open = l
            .open_firing(
                Some("checkin"),
                &["checkin"],
                at + chrono::Duration::hours(3),
            )
            .unwrap()
            .unwrap();
        let r = l
            .answer(
                &open,
                "3",
                None,
                "cli",
                at + chrono::Duration::hours(3),
                &|r, c| format!("ac-{r}-{c}"),
            )
            .unwrap();
        assert_eq!(
            r,
            AnswerResult::Recorded {
                late: true,
                all_clear_to: vec!["sam".into()]
            }
        );
        assert_eq!(
            l.answer(&open, "4", None, "cli", at, &|r, c| format!("{r}{c}"))
                .unwrap(),
            AnswerResult::Already
        );
        assert!(
            l.due_watches(at + chrono::Duration::hours(9), 10)
                .unwrap()
                .is_empty(),
            "kim's step was cancelled"
        );
        let pending = l.in_state(State::Pending, 10).unwrap();
        assert_eq!(
            pending.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            vec!["ac-sam-c"]
        );
        assert!(l.use_token("n1", at).unwrap() && !l.use_token("n1", at).unwrap());
        let j = l.journal(at - chrono::Duration::days(1)).unwrap();
        assert_eq!(
            (j.len(), j[0].value.as_deref(), j[0].late),
            (1, Some("3"), true)
        );
        assert_eq!(
            l.escalation_counts(at - chrono::Duration::days(1)).unwrap(),
            (1, 0)
        );
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
        let e = SqliteLedger::open(dir.path()).err().unwrap();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("is damaged"), "{e}");
    }
}
