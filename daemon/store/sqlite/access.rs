//! SQLite: the person's passphrase hash.

use super::*;
use crate::store::Access;

impl Access for SqliteLedger {
    fn set_passphrase(&self, hash: Option<&str>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let conn = self.conn();
        match hash {
            Some(h) => conn.execute(
                "INSERT INTO access (id, hash, set_at) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                params![h, ms(now)],
            )?,
            None => conn.execute("DELETE FROM access", [])?,
        };
        Ok(())
    }

    fn passphrase(&self) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT hash, set_at FROM access WHERE id = 1")?;
        let mut rows = stmt.query_map([], |r| Ok((r.get(0)?, from_ms(r.get(1)?))))?;
        Ok(rows.next().transpose()?)
    }
}
