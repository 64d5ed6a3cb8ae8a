//! The daemon ledger's write-ahead-log checkpoints, off the writers' path: the daemon's
//! connection does not checkpoint itself (the commit that crossed SQLite's threshold would
//! copy thousands of pages while every other ledger call waited for it); a thread with a
//! connection of its own copies the log back into the database file a moment after writes,
//! concurrently with them. Owns only that thread; it must not write rows.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// How long the thread lets writes gather after the first one before it checkpoints (and
/// so the most often it checkpoints while the daemon writes).
const GATHER: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Shared {
    /// Written since the last checkpoint (set without the lock on every ledger call).
    dirty: AtomicBool,
    closed: Mutex<bool>,
    wake: Condvar,
}

pub(super) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Opens a second connection on the ledger at `path` and starts the thread.
    pub(super) fn start(path: &Path) -> std::io::Result<Self> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared::default());
        let mine = shared.clone();
        let thread = std::thread::Builder::new()
            .name("kithd-checkpoint".into())
            .spawn(move || run(&conn, &mine))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Says the ledger was (or is about to be) used: a checkpoint follows in a moment.
    pub(super) fn nudge(&self) {
        if !self.shared.dirty.swap(true, Ordering::AcqRel) {
            let _closed = self.shared.closed.lock().unwrap_or_else(|p| p.into_inner());
            self.shared.wake.notify_one();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        *self.shared.closed.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sleeps until nudged (no work, no wake-ups while the daemon is idle), lets the writes
/// gather, checkpoints; until closed.
fn run(conn: &Connection, shared: &Shared) {
    let mut closed = shared.closed.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        while !*closed && !shared.dirty.load(Ordering::Acquire) {
            closed = shared.wake.wait(closed).unwrap_or_else(|p| p.into_inner());
        }
        if *closed {
            return;
        }
        closed = shared
            .wake
            .wait_timeout_while(closed, GATHER, |c| !*c)
            .unwrap_or_else(|p| p.into_inner())
            .0;
        if *closed {
            return;
        }
        shared.dirty.store(false, Ordering::Release);
        drop(closed);
        // PASSIVE: copies what no reader still needs, never waits for a writer or a
        // reader; what it could not copy goes at the next nudge.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "A ledger checkpoint did not run.");
        }
        closed = shared.closed.lock().unwrap_or_else(|p| p.into_inner());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows of `t` in the database file itself, leaving the log aside.
    fn in_file(path: &Path) -> i64 {
        let uri = format!("file:{}?immutable=1", path.display());
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        let c = Connection::open_with_flags(uri, flags).unwrap();
        c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap_or(0)
    }

    #[test]
    fn a_nudge_copies_the_log_back_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;")
            .unwrap();
        let cp = Checkpointer::start(&path).unwrap();
        writer.execute_batch("CREATE TABLE t (x);").unwrap();
        for i in 0..200 {
            writer.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        // Not nudged yet, and the writer does not checkpoint: all of it is in the log.
        assert_eq!(in_file(&path), 0);
        cp.nudge();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while in_file(&path) < 200 {
            assert!(std::time::Instant::now() < deadline, "no checkpoint");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Closing joins the thread, which was waiting for the next nudge.
        drop(cp);
    }
}
