//! SQLite: escalation steps, answers and single-use answer links.

use super::*;
use crate::store::rules;
use crate::vocab::StepAction;

impl Steps for SqliteLedger {
    fn due_watches(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Watch>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT w.id, f.item, f.kind, f.scheduled, w.action, w.step, w.recipient, w.due,
                    EXISTS (SELECT 1 FROM answers a WHERE a.firing = w.firing AND a.heard)
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
                heard: r.get(8)?,
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
            "SELECT w.state = 'pending' AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = w.firing AND NOT a.heard) FROM watches w WHERE w.id = ?1",
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
        insert_firing(&tx, firing, deliveries, "dispatched", self.now_ms())?;
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
        kinds: &[Kind],
        now: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError> {
        let conn = self.conn();
        let kinds_json = serde_json::to_string(&kinds.iter().map(Kind::as_str).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".into());
        let row = conn
            .query_row(
                "SELECT f.id, f.item, f.kind, f.scheduled, f.deadline FROM firings f
                 WHERE f.purpose = ?4 AND f.outcome = 'dispatched' AND f.scheduled <= ?1
                   AND (?2 IS NULL OR f.item = ?2)
                   AND f.kind IN (SELECT value FROM json_each(?3))
                   AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = f.id)
                 ORDER BY f.scheduled DESC, f.id DESC LIMIT 1",
                params![ms(now), item, kinds_json, MAIN_KEY],
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
                 FROM firings f WHERE f.item = ?1 AND f.scheduled = ?2 AND f.purpose = ?3",
                params![item, ms(scheduled), MAIN_KEY],
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
    ) -> Result<AnswerResult, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let late = firing.deadline.is_some_and(|d| now > d);
        let alert_on: Option<String> = tx.query_row(
            "SELECT alert_on FROM firings WHERE id = ?1",
            params![firing.id],
            |r| r.get(0),
        )?;
        let heard = rules::heard(alert_on.as_deref(), value);
        let inserted = tx.execute(
            "INSERT INTO answers (firing, item, kind, scheduled, value, note, via, answered, late, heard) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (firing) DO NOTHING",
            params![firing.id, firing.item, firing.kind, ms(firing.scheduled), value, note, via, ms(now), late as i64, heard as i64],
        )?;
        if inserted == 0 {
            return Ok(AnswerResult::Already);
        }
        if heard {
            // The person asked for this answer to be heard: no more nudges, and the
            // escalation goes ahead now (its steps keep their spacing).
            tx.execute(
                "UPDATE watches SET state = 'cancelled' WHERE firing = ?1 AND state = 'pending' AND action = ?2",
                params![firing.id, StepAction::Nag],
            )?;
            tx.execute(
                "UPDATE watches SET due = due - ((SELECT MIN(due) FROM watches WHERE firing = ?1 AND state = 'pending' AND action = ?2) - ?3)
                 WHERE firing = ?1 AND state = 'pending' AND action = ?2
                   AND (SELECT MIN(due) FROM watches WHERE firing = ?1 AND state = 'pending' AND action = ?2) > ?3",
                params![firing.id, StepAction::Escalate, ms(now)],
            )?;
            tx.commit()?;
            return Ok(AnswerResult::Recorded {
                late,
                all_clear_to: Vec::new(),
                heard: true,
            });
        }
        tx.execute(
            "UPDATE watches SET state = 'cancelled' WHERE firing = ?1 AND state = 'pending'",
            params![firing.id],
        )?;
        let alerts: Vec<(String, String, String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT id, recipient, channel, state FROM deliveries
                 WHERE item = ?1 AND scheduled = ?2 AND purpose LIKE ?3 ORDER BY purpose, created",
            )?;
            let escalations = format!("{ESCALATE_KEY_PREFIX}%");
            let rows = stmt.query_map(
                params![firing.item, ms(firing.scheduled), escalations],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
            rows.collect::<Result<_, _>>()?
        };
        let after = rules::after_answer(self.scope.as_deref(), firing, &alerts, now);
        for id in &after.cancel {
            tx.execute(
                "UPDATE deliveries SET state = 'cancelled', last_error = 'answered before it was sent', claimed = 0, updated = ?2 WHERE id = ?1 AND state = 'pending'",
                params![id, ms(now)],
            )?;
        }
        if let Some((all_clear, deliveries)) = &after.all_clear {
            insert_firing(&tx, all_clear, deliveries, "dispatched", ms(now))?;
        }
        tx.commit()?;
        Ok(AnswerResult::Recorded {
            late,
            all_clear_to: after.told,
            heard: false,
        })
    }

    fn snooze(
        &self,
        firing: &OpenFiring,
        delay: chrono::Duration,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<SnoozeResult, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let cap: Option<i64> = tx.query_row(
            "SELECT snooze_cap FROM firings WHERE id = ?1",
            params![firing.id],
            |r| r.get(0),
        )?;
        let (used, count): (i64, i64) = tx.query_row(
            "SELECT COALESCE(SUM(delay), 0), COUNT(*) FROM snoozes WHERE firing = ?1",
            params![firing.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let Some(secs) = rules::snooze_allowance(cap, used, delay) else {
            return Ok(SnoozeResult::CapReached);
        };
        let left = cap.unwrap_or(0) - used;
        // Where the reminder went: the person's own delivery of this firing.
        let Some((channel, channel_index)): Option<(String, i64)> = tx
            .query_row(
                "SELECT channel, channel_index FROM deliveries
                 WHERE item = ?1 AND scheduled = ?2 AND purpose = ?3 AND recipient = ?4
                 ORDER BY channel_index DESC LIMIT 1",
                params![firing.item, ms(firing.scheduled), MAIN_KEY, SELF_ID],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
        else {
            return Ok(SnoozeResult::CapReached);
        };
        let n = count as u32 + 1;
        tx.execute(
            "INSERT INTO snoozes (firing, at, delay, via) VALUES (?1, ?2, ?3, ?4)",
            params![firing.id, ms(now), secs, via],
        )?;
        let shift = secs * 1000;
        tx.execute(
            "UPDATE watches SET due = due + ?2 WHERE firing = ?1 AND state = 'pending'",
            params![firing.id, shift],
        )?;
        tx.execute(
            "UPDATE firings SET deadline = deadline + ?2 WHERE id = ?1 AND deadline IS NOT NULL",
            params![firing.id, shift],
        )?;
        let until = now + chrono::Duration::seconds(secs);
        let (again, delivery) = rules::sent_again(
            self.scope.as_deref(),
            firing,
            n,
            channel,
            channel_index as u32,
            until,
        );
        insert_firing(&tx, &again, &[delivery], "dispatched", ms(now))?;
        tx.commit()?;
        Ok(SnoozeResult::Snoozed {
            until,
            delay: chrono::Duration::seconds(secs),
            left: chrono::Duration::seconds(left - secs),
        })
    }

    fn add_pause(&self, pause: &Pause, now: DateTime<Utc>) -> Result<(), StoreError> {
        let text = serde_json::to_string(pause).map_err(|e| StoreError::Call(e.to_string()))?;
        self.conn().execute(
            "INSERT INTO pauses (pause, until_at, created) VALUES (?1, ?2, ?3)",
            params![text, ms(pause.until), ms(now)],
        )?;
        Ok(())
    }

    fn end_pauses(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "UPDATE pauses SET ended = ?1 WHERE ended IS NULL AND until_at > ?1",
            params![ms(now)],
        )?)
    }

    fn pauses(&self, now: DateTime<Utc>) -> Result<Vec<Pause>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT pause FROM pauses WHERE ended IS NULL AND until_at > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![ms(now)], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for text in rows {
            // A pause this kithd can't read (a newer one wrote it) is left out, not fatal.
            if let Ok(p) = serde_json::from_str(&text?) {
                out.push(p);
            }
        }
        Ok(out)
    }

    fn record_paused(&self, firing: &NewFiring) -> Result<(), StoreError> {
        insert_firing(&self.conn(), firing, &[], "paused", self.now_ms())?;
        Ok(())
    }

    fn postpone_watch(&self, id: i64, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE watches SET due = ?2 WHERE id = ?1 AND state = 'pending' AND due < ?2",
            params![id, ms(until)],
        )?;
        Ok(())
    }

    fn use_token(&self, nonce: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO used_tokens (nonce, used) VALUES (?1, ?2) ON CONFLICT (nonce) DO NOTHING",
            params![nonce, ms(now)],
        )?;
        Ok(n == 1)
    }

    fn release_token(&self, nonce: &str) -> Result<(), StoreError> {
        self.conn()
            .execute("DELETE FROM used_tokens WHERE nonce = ?1", params![nonce])?;
        Ok(())
    }
}
