//! SQLite: what status, history, report and health read.

use super::*;

impl Reports for SqliteLedger {
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
            "SELECT item, kind, purpose, scheduled, outcome FROM firings WHERE outcome IN ('missed', 'paused') AND scheduled >= ?1 AND (?2 IS NULL OR item = ?2)
             ORDER BY scheduled",
        )?;
        let rows = stmt.query_map(params![f.since.map(ms).unwrap_or(i64::MIN), f.item], |r| {
            Ok(Missed {
                item: r.get(0)?,
                kind: r.get(1)?,
                purpose: r.get(2)?,
                scheduled: from_ms(r.get(3)?),
                outcome: r.get(4)?,
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

    fn journal(&self, since: DateTime<Utc>) -> Result<Vec<JournalEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT f.item, f.kind, f.scheduled, f.outcome, a.value, COALESCE(a.late, 0), a.via, a.answered, a.note,
                    (SELECT COUNT(*) FROM snoozes s WHERE s.firing = f.id)
             FROM firings f LEFT JOIN answers a ON a.firing = f.id
             WHERE f.purpose = ?2 AND f.kind IN (?3, ?4) AND f.scheduled >= ?1
             ORDER BY f.scheduled, f.item",
        )?;
        let answerable = (Kind::Checkin, Kind::Medication);
        let rows = stmt.query_map(
            params![ms(since), MAIN_KEY, answerable.0, answerable.1],
            |r| {
                Ok(JournalEntry {
                    item: r.get(0)?,
                    kind: r.get(1)?,
                    scheduled: from_ms(r.get(2)?),
                    outcome: r.get(3)?,
                    value: r.get(4)?,
                    late: r.get::<_, i64>(5)? != 0,
                    via: r.get(6)?,
                    answered: r.get::<_, Option<i64>>(7)?.map(from_ms),
                    note: r.get(8)?,
                    snoozes: r.get(9)?,
                })
            },
        )?;
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
        Ok((
            count(&format!("{ESCALATE_KEY_PREFIX}%"))?,
            count(ALL_CLEAR_KEY)?,
        ))
    }
}
