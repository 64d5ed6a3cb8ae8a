//! PostgreSQL: escalation steps, answers, snoozes, pauses and single-use nonces. A step
//! and an answer to its firing lock the firing's step rows first, so whichever commits
//! second sees the other: nobody is alerted about a person who has already answered.

use super::*;
use crate::store::rules;
use crate::store::{AnswerResult, OpenFiring, SnoozeResult, Steps, Watch};
use crate::vocab::{ESCALATE_KEY_PREFIX, MAIN_KEY, Pause, SELF_ID, StepAction};

fn open_firing(row: &PgRow) -> Result<OpenFiring, sqlx::Error> {
    Ok(OpenFiring {
        id: row.try_get("id")?,
        item: row.try_get("item")?,
        kind: kind(row, "kind")?,
        scheduled: row.try_get("scheduled")?,
        deadline: row.try_get("deadline")?,
        answered: row.try_get("answered")?,
    })
}

impl Steps for PgLedger {
    fn due_watches(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<Watch>, StoreError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT w.id, f.item, f.kind, f.scheduled, w.action, w.step, w.recipient, w.due,
                        EXISTS (SELECT 1 FROM answers a WHERE a.firing = w.firing AND a.heard) AS heard
                 FROM watches w JOIN firings f ON f.id = w.firing
                 WHERE w.state = 'pending' AND w.plan = $3 AND w.due <= $1 ORDER BY w.due, w.id LIMIT $2",
            )
            .bind(now)
            .bind(limit as i64)
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    let action: String = r.try_get("action")?;
                    Ok(Watch {
                        id: r.try_get("id")?,
                        item: r.try_get("item")?,
                        kind: kind(r, "kind")?,
                        scheduled: r.try_get("scheduled")?,
                        action: StepAction::parse(&action).unwrap_or(StepAction::Nag),
                        step: r.try_get::<i32, _>("step")? as u32,
                        recipient: r.try_get("recipient")?,
                        due: r.try_get("due")?,
                        heard: r.try_get("heard")?,
                    })
                })
                .collect()
        })
    }

    fn next_watch_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            sqlx::query_scalar("SELECT MIN(due) FROM watches WHERE state = 'pending' AND plan = $1")
                .bind(self.plan())
                .fetch_one(&self.pool)
                .await
        })
    }

    fn run_watch(&self, id: i64, step: &(NewFiring, Vec<NewDelivery>)) -> Result<bool, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // The step's row, locked: another instance taking the same step waits here and
            // then finds it done; an answer being recorded waits too, or was seen.
            let still_open: Option<bool> = sqlx::query_scalar(
                "SELECT w.state = 'pending' AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = w.firing AND NOT a.heard)
                 FROM watches w WHERE w.id = $1 FOR UPDATE",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if still_open != Some(true) {
                sqlx::query("UPDATE watches SET state = 'cancelled' WHERE id = $1 AND state = 'pending'")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(false);
            }
            let (firing, deliveries) = step;
            insert_firing(&mut tx, self.plan(), firing, deliveries, "dispatched").await?;
            sqlx::query("UPDATE watches SET state = 'done' WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn cancel_watch(&self, id: i64) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "UPDATE watches SET state = 'cancelled' WHERE id = $1 AND state = 'pending'",
            )
            .bind(id)
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }

    fn open_firing(
        &self,
        item: Option<&str>,
        kinds: &[Kind],
        now: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError> {
        let kinds: Vec<&str> = kinds.iter().map(Kind::as_str).collect();
        self.run(async {
            let row = sqlx::query(
                "SELECT f.id, f.item, f.kind, f.scheduled, f.deadline, false AS answered FROM firings f
                 WHERE f.plan = $5 AND f.purpose = $4 AND f.outcome = 'dispatched' AND f.scheduled <= $1
                   AND ($2::text IS NULL OR f.item = $2) AND f.kind = ANY($3)
                   AND NOT EXISTS (SELECT 1 FROM answers a WHERE a.firing = f.id)
                 ORDER BY f.scheduled DESC, f.id DESC LIMIT 1",
            )
            .bind(now)
            .bind(item)
            .bind(&kinds)
            .bind(MAIN_KEY)
            .bind(self.plan())
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(open_firing).transpose()
        })
    }

    fn find_firing(
        &self,
        item: &str,
        scheduled: DateTime<Utc>,
    ) -> Result<Option<OpenFiring>, StoreError> {
        self.run(async {
            let row = sqlx::query(
                "SELECT f.id, f.item, f.kind, f.scheduled, f.deadline,
                        EXISTS (SELECT 1 FROM answers a WHERE a.firing = f.id) AS answered
                 FROM firings f WHERE f.plan = $4 AND f.item = $1 AND f.scheduled = $2 AND f.purpose = $3",
            )
            .bind(item)
            .bind(scheduled)
            .bind(MAIN_KEY)
            .bind(self.plan())
            .fetch_optional(&self.pool)
            .await?;
            row.as_ref().map(open_firing).transpose()
        })
    }

    fn answer(
        &self,
        firing: &OpenFiring,
        value: &str,
        note: Option<&str>,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<AnswerResult, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // Steps first (see the module's note), then the answer.
            sqlx::query("SELECT id FROM watches WHERE firing = $1 ORDER BY id FOR UPDATE")
                .bind(firing.id)
                .fetch_all(&mut *tx)
                .await?;
            let late = firing.deadline.is_some_and(|d| now > d);
            let alert_on: Option<String> =
                sqlx::query_scalar("SELECT alert_on FROM firings WHERE id = $1")
                    .bind(firing.id)
                    .fetch_one(&mut *tx)
                    .await?;
            let heard = rules::heard(alert_on.as_deref(), value);
            let inserted = sqlx::query(
                "INSERT INTO answers (firing, item, kind, scheduled, value, note, via, answered, late, plan, heard)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (firing) DO NOTHING",
            )
            .bind(firing.id)
            .bind(&firing.item)
            .bind(firing.kind.as_str())
            .bind(firing.scheduled)
            .bind(value)
            .bind(note)
            .bind(via)
            .bind(now)
            .bind(late)
            .bind(self.plan())
            .bind(heard)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 0 {
                return Ok(AnswerResult::Already);
            }
            if heard {
                // The person asked for this answer to be heard: no more nudges, and the
                // escalation goes ahead now (its steps keep their spacing).
                sqlx::query("UPDATE watches SET state = 'cancelled' WHERE firing = $1 AND state = 'pending' AND action = $2")
                    .bind(firing.id)
                    .bind(StepAction::Nag.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "WITH first AS (SELECT MIN(due) AS due FROM watches WHERE firing = $1 AND state = 'pending' AND action = $2)
                     UPDATE watches w SET due = w.due - (first.due - $3) FROM first
                     WHERE w.firing = $1 AND w.state = 'pending' AND w.action = $2 AND first.due > $3",
                )
                .bind(firing.id)
                .bind(StepAction::Escalate.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(AnswerResult::Recorded {
                    late,
                    all_clear_to: Vec::new(),
                    heard: true,
                });
            }
            sqlx::query("UPDATE watches SET state = 'cancelled' WHERE firing = $1 AND state = 'pending'")
                .bind(firing.id)
                .execute(&mut *tx)
                .await?;
            let alerts = sqlx::query(
                "SELECT id, recipient, channel, state FROM deliveries
                 WHERE plan = $4 AND item = $1 AND scheduled = $2 AND purpose LIKE $3 ORDER BY purpose, created",
            )
            .bind(&firing.item)
            .bind(firing.scheduled)
            .bind(format!("{ESCALATE_KEY_PREFIX}%"))
            .bind(self.plan())
            .fetch_all(&mut *tx)
            .await?;
            let alerts: Vec<rules::Alert> = alerts
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get("id")?,
                        r.try_get("recipient")?,
                        r.try_get("channel")?,
                        r.try_get("state")?,
                    ))
                })
                .collect::<Result<_, sqlx::Error>>()?;
            let after = rules::after_answer(self.scope.as_deref(), firing, &alerts, now);
            for id in &after.cancel {
                sqlx::query(
                    "UPDATE deliveries SET state = 'cancelled', last_error = 'answered before it was sent', claimed = false, updated = now()
                     WHERE id = $1 AND state = 'pending'",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
            }
            if let Some((all_clear, deliveries)) = &after.all_clear {
                insert_firing(&mut tx, self.plan(), all_clear, deliveries, "dispatched").await?;
            }
            tx.commit().await?;
            Ok(AnswerResult::Recorded {
                late,
                all_clear_to: after.told,
                heard: false,
            })
        })
    }

    fn snooze(
        &self,
        firing: &OpenFiring,
        delay: chrono::Duration,
        via: &str,
        now: DateTime<Utc>,
    ) -> Result<SnoozeResult, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // The firing's row, locked: two snoozes at once can't both spend the same cap.
            let cap: Option<i64> =
                sqlx::query_scalar("SELECT snooze_cap FROM firings WHERE id = $1 FOR UPDATE")
                    .bind(firing.id)
                    .fetch_one(&mut *tx)
                    .await?;
            let (used, count): (i64, i64) = {
                let r = sqlx::query(
                    "SELECT COALESCE(SUM(delay), 0)::bigint AS used, COUNT(*) AS n FROM snoozes WHERE firing = $1",
                )
                .bind(firing.id)
                .fetch_one(&mut *tx)
                .await?;
                (r.try_get("used")?, r.try_get("n")?)
            };
            let Some(secs) = rules::snooze_allowance(cap, used, delay) else {
                return Ok(SnoozeResult::CapReached);
            };
            let left = cap.unwrap_or(0) - used;
            let Some(row) = sqlx::query(
                "SELECT channel, channel_index FROM deliveries
                 WHERE plan = $5 AND item = $1 AND scheduled = $2 AND purpose = $3 AND recipient = $4
                 ORDER BY channel_index DESC LIMIT 1",
            )
            .bind(&firing.item)
            .bind(firing.scheduled)
            .bind(MAIN_KEY)
            .bind(SELF_ID)
            .bind(self.plan())
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(SnoozeResult::CapReached);
            };
            let channel: String = row.try_get("channel")?;
            let channel_index: i32 = row.try_get("channel_index")?;
            let n = count as u32 + 1;
            sqlx::query("INSERT INTO snoozes (firing, at, delay, via) VALUES ($1, $2, $3, $4)")
                .bind(firing.id)
                .bind(now)
                .bind(secs)
                .bind(via)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE watches SET due = due + make_interval(secs => $2) WHERE firing = $1 AND state = 'pending'",
            )
            .bind(firing.id)
            .bind(secs as f64)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE firings SET deadline = deadline + make_interval(secs => $2) WHERE id = $1 AND deadline IS NOT NULL",
            )
            .bind(firing.id)
            .bind(secs as f64)
            .execute(&mut *tx)
            .await?;
            let until = now + chrono::Duration::seconds(secs);
            let (again, delivery) =
                rules::sent_again(self.scope.as_deref(), firing, n, channel, channel_index as u32, until);
            insert_firing(&mut tx, self.plan(), &again, &[delivery], "dispatched").await?;
            tx.commit().await?;
            Ok(SnoozeResult::Snoozed {
                until,
                delay: chrono::Duration::seconds(secs),
                left: chrono::Duration::seconds(left - secs),
            })
        })
    }

    fn add_pause(&self, pause: &Pause, now: DateTime<Utc>) -> Result<(), StoreError> {
        let text = serde_json::to_string(pause).map_err(|e| StoreError::Call(e.to_string()))?;
        self.run(async {
            sqlx::query(
                "INSERT INTO pauses (pause, until_at, created, plan) VALUES ($1, $2, $3, $4)",
            )
            .bind(&text)
            .bind(pause.until)
            .bind(now)
            .bind(self.plan())
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }

    fn end_pauses(&self, now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.run(async {
            let n = sqlx::query(
                "UPDATE pauses SET ended = $1 WHERE ended IS NULL AND until_at > $1 AND plan = $2",
            )
            .bind(now)
            .bind(self.plan())
            .execute(&self.pool)
            .await?;
            Ok(n.rows_affected() as usize)
        })
    }

    fn pauses(&self, now: DateTime<Utc>) -> Result<Vec<Pause>, StoreError> {
        let texts: Vec<String> = self.run(async {
            sqlx::query_scalar(
                "SELECT pause FROM pauses WHERE plan = $2 AND ended IS NULL AND until_at > $1 ORDER BY id",
            )
            .bind(now)
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await
        })?;
        // A pause this kithd can't read (a newer one wrote it) is left out, not fatal.
        Ok(texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect())
    }

    fn record_paused(&self, firing: &NewFiring) -> Result<(), StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            insert_firing(&mut tx, self.plan(), firing, &[], "paused").await?;
            tx.commit().await
        })
    }

    fn postpone_watch(&self, id: i64, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "UPDATE watches SET due = $2 WHERE id = $1 AND state = 'pending' AND due < $2",
            )
            .bind(id)
            .bind(until)
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }

    fn use_token(&self, nonce: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query(
                "INSERT INTO used_tokens (nonce, used) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING",
            )
            .bind(nonce)
            .bind(now)
            .execute(&self.pool)
            .await?;
            Ok(n.rows_affected() == 1)
        })
    }

    fn release_token(&self, nonce: &str) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query("DELETE FROM used_tokens WHERE nonce = $1")
                .bind(nonce)
                .execute(&self.pool)
                .await
                .map(|_| ())
        })
    }
}
