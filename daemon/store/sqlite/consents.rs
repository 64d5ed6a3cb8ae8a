//! SQLite: what contacts said about being messaged.

use super::*;
use crate::store::{ConsentRecord, Consents};

impl Consents for SqliteLedger {
    fn withdraw(
        &self,
        contact: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO consents (contact, state, how, at) VALUES (?1, 'withdrawn', ?2, ?3)",
            params![contact, how, ms(now)],
        )?;
        let deliveries = tx.execute(
            "UPDATE deliveries SET state = 'cancelled', last_error = 'the contact asked to stop', claimed = 0, updated = ?2
             WHERE recipient = ?1 AND state = 'pending'",
            params![contact, ms(now)],
        )?;
        let steps = tx.execute(
            "UPDATE watches SET state = 'cancelled' WHERE recipient = ?1 AND state = 'pending'",
            params![contact],
        )?;
        tx.commit()?;
        Ok((deliveries, steps))
    }

    fn record_consent(
        &self,
        contact: &str,
        state: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO consents (contact, state, how, at) VALUES (?1, ?2, ?3, ?4)",
            params![contact, state, how, ms(now)],
        )?;
        Ok(())
    }

    fn consents(&self) -> Result<Vec<ConsentRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.contact, c.state, c.how, c.at FROM consents c
             WHERE c.rowid = (SELECT l.rowid FROM consents l WHERE l.contact = c.contact ORDER BY l.at DESC, l.rowid DESC LIMIT 1)
             ORDER BY c.contact",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ConsentRecord {
                contact: r.get(0)?,
                state: r.get(1)?,
                how: r.get(2)?,
                at: from_ms(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
