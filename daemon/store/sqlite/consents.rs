//! SQLite: what contacts said about being messaged.

use super::*;
use crate::store::Consents;

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

    fn withdrawn(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT c.contact, c.at FROM consents c
             WHERE c.state = 'withdrawn'
               AND c.at = (SELECT MAX(at) FROM consents l WHERE l.contact = c.contact)
             ORDER BY c.contact",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, from_ms(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
