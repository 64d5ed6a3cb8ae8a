//! The SQLite queue: recording firings, claiming deliveries under leases, and recording
//! their outcomes under the claim's fence. SQL stays next to the method that runs it.

use super::*;

impl Queue for SqliteLedger {
    fn record_firings(
        &self,
        batch: &[(NewFiring, Vec<NewDelivery>)],
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let now = self.now_ms();
        let mut new = Vec::new();
        for (firing, deliveries) in batch {
            new.extend(insert_firing(&tx, firing, deliveries, "dispatched", now)?);
        }
        tx.commit()?;
        Ok(new)
    }

    fn record_missed(&self, firing: &NewFiring) -> Result<(), StoreError> {
        insert_firing(&self.conn(), firing, &[], "missed", self.now_ms())?;
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
            // Due at the same time: in the order recorded (neighbours in the file).
            let rows: Vec<(Delivery, i64)> = {
                let mut stmt = tx.prepare_cached(&format!(
                    "SELECT {DELIVERY_COLUMNS}, rowid FROM deliveries WHERE state = 'pending' AND channel = ?1 AND due <= ?2 ORDER BY due, rowid LIMIT ?3"
                ))?;
                let rows = stmt.query_map(params![channel, ms(now), free as i64], |r| {
                    Ok((delivery(r)?, r.get(DELIVERY_COLUMN_COUNT)?))
                })?;
                rows.collect::<Result<_, _>>()?
            };
            let mut claim = tx.prepare_cached(
                "UPDATE deliveries SET due = ?2, claimed = 1, claim = claim + 1, uncertain = uncertain OR claimed WHERE rowid = ?1 RETURNING uncertain",
            )?;
            for (mut d, rowid) in rows {
                d.uncertain =
                    claim.query_row(params![rowid, ms(lease_until)], |r| r.get::<_, i64>(0))? != 0;
                d.claim += 1;
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
            // Not renewed because it finished under this very claim meanwhile: not lost.
            let mut finished = tx.prepare_cached(
                "SELECT 1 FROM deliveries WHERE id = ?1 AND claim = ?2 AND state <> 'pending'",
            )?;
            for f in held {
                if stmt.execute(params![f.id, f.claim, ms(lease_until), ms(now)])? == 0
                    && !finished.exists(params![f.id, f.claim])?
                {
                    lost.push(f.clone());
                }
            }
        }
        tx.commit()?;
        Ok(lost)
    }

    fn release_claims(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE deliveries SET due = MIN(due, ?1), claimed = 0, uncertain = 1 WHERE state = 'pending' AND claimed = 1",
            params![ms(now)],
        )?)
    }

    fn note_consent(&self, id: &str, consent: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE deliveries SET consent = ?2 WHERE id = ?1",
            params![id, consent],
        )?;
        Ok(())
    }

    fn retire(&self, reason: &str) -> Result<(usize, usize), StoreError> {
        // One daemon per SQLite ledger, and it has stopped: nothing is in flight elsewhere.
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let deliveries = tx.execute(
            "UPDATE deliveries SET state = 'cancelled', last_error = ?1, updated = ?2, claimed = 0 WHERE state = 'pending'",
            params![reason, self.now_ms()],
        )?;
        let steps = tx.execute(
            "UPDATE watches SET state = 'cancelled' WHERE state = 'pending'",
            [],
        )?;
        tx.commit()?;
        Ok((deliveries, steps))
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
        maybe_sent: bool,
    ) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            &format!("UPDATE deliveries SET attempts = attempts + 1, due = ?3, last_error = ?4, updated = ?5, claimed = 0, uncertain = uncertain OR ?6 WHERE {FENCED}"),
            params![fence.id, fence.claim, ms(due), error, self.now_ms(), maybe_sent],
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
        let now = self.now_ms();
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
            params![fence.id, fence.claim, reason, self.now_ms()],
        )?;
        Ok(n == 1)
    }
}
