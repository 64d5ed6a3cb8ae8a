//! SQLite: pruning old history, and erasing it so that the bytes are gone from the file
//! (`secure_delete`, then `VACUUM` and a truncating checkpoint of the write-ahead log).

use super::*;
use crate::store::Keeping;

/// Firings before `?1` (all, with `NULL`) and, with `finished`, only those with nothing
/// pending.
const CHOSEN: &str = "CREATE TEMP TABLE IF NOT EXISTS chosen (id INTEGER PRIMARY KEY);
    DELETE FROM chosen;";

fn choose(
    tx: &rusqlite::Transaction,
    before: Option<i64>,
    finished: bool,
) -> rusqlite::Result<u64> {
    tx.execute_batch(CHOSEN)?;
    let n = tx.execute(
        "INSERT INTO chosen (id) SELECT f.id FROM firings f
         WHERE (?1 IS NULL OR f.scheduled < ?1)
           AND (?2 = 0 OR (NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.firing = f.id AND d.state = 'pending')
                           AND NOT EXISTS (SELECT 1 FROM watches w WHERE w.firing = f.id AND w.state = 'pending')))",
        params![before, finished as i64],
    )?;
    for table in ["deliveries", "answers", "watches", "snoozes"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE firing IN (SELECT id FROM chosen)"),
            [],
        )?;
    }
    tx.execute(
        "DELETE FROM firings WHERE id IN (SELECT id FROM chosen)",
        [],
    )?;
    tx.execute(
        "DELETE FROM used_tokens WHERE ?1 IS NULL OR used < ?1",
        params![before],
    )?;
    Ok(n as u64)
}

impl Keeping for SqliteLedger {
    fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        conn.execute_batch("PRAGMA secure_delete = ON")?;
        let tx = conn.transaction()?;
        let n = choose(&tx, Some(ms(before)), true)?;
        tx.commit()?;
        Ok(n)
    }

    fn forget(&self, before: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.conn();
        // Freed pages are overwritten with zeros, not left in the file.
        conn.execute_batch("PRAGMA secure_delete = ON")?;
        let tx = conn.transaction()?;
        let before = before.map(ms);
        let n = choose(&tx, before, false)?;
        tx.execute(
            "DELETE FROM pauses WHERE ?1 IS NULL OR created < ?1",
            params![before],
        )?;
        tx.execute(
            "INSERT INTO deletions (at, before) VALUES (?1, ?2)",
            params![ms(now), before],
        )?;
        tx.commit()?;
        // The file is rebuilt without the freed pages, and the log that still held them
        // is emptied.
        conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);")?;
        Ok(n)
    }

    fn deletions(&self) -> Result<Vec<crate::store::Deletion>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT at, before FROM deletions ORDER BY at")?;
        let rows = stmt.query_map([], |r| {
            Ok((from_ms(r.get(0)?), r.get::<_, Option<i64>>(1)?.map(from_ms)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
