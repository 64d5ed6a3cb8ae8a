//! PostgreSQL: what status, history, report and health read.

use super::*;
use crate::store::{HealthFacts, HistoryFilter, JournalEntry, Missed, Reports, SharedState, Term};
use crate::vocab::{ALL_CLEAR_KEY, ESCALATE_KEY_PREFIX, MAIN_KEY};

impl Reports for PgLedger {
    fn in_state(&self, state: State, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        let order = if state == State::Pending {
            "due ASC"
        } else {
            "updated DESC"
        };
        self.run(async {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE state = $1 AND plan = $3 ORDER BY {order} LIMIT $2"
            ))
            .bind(state.as_str())
            .bind(limit as i64)
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(delivery).collect()
        })
    }

    fn history(&self, f: &HistoryFilter) -> Result<Vec<Delivery>, StoreError> {
        self.run(async {
            let rows = sqlx::query(&format!(
                "SELECT {DELIVERY_COLUMNS} FROM deliveries
                 WHERE plan = $4 AND ($1::timestamptz IS NULL OR scheduled >= $1) AND ($2::text IS NULL OR item = $2)
                 ORDER BY scheduled, created, id LIMIT $3"
            ))
            .bind(f.since)
            .bind(f.item.as_deref())
            .bind(f.limit.map(|l| l as i64))
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(delivery).collect()
        })
    }

    fn missed(&self, f: &HistoryFilter) -> Result<Vec<Missed>, StoreError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT item, kind, purpose, scheduled, outcome FROM firings
                 WHERE plan = $3 AND outcome IN ('missed', 'paused') AND ($1::timestamptz IS NULL OR scheduled >= $1)
                   AND ($2::text IS NULL OR item = $2)
                 ORDER BY scheduled",
            )
            .bind(f.since)
            .bind(f.item.as_deref())
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(Missed {
                        item: r.try_get("item")?,
                        kind: kind(r, "kind")?,
                        purpose: r.try_get("purpose")?,
                        scheduled: r.try_get("scheduled")?,
                        outcome: r.try_get("outcome")?,
                    })
                })
                .collect()
        })
    }

    fn health(&self, since: DateTime<Utc>) -> Result<HealthFacts, StoreError> {
        self.run(async {
            let dead_letters: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND updated >= $1 AND plan = $2",
            )
            .bind(since)
            .bind(self.plan())
            .fetch_one(&self.pool)
            .await?;
            // Each channel's latest finished attempt.
            let failing_channels: Vec<String> = sqlx::query_scalar(
                "SELECT channel FROM (
                    SELECT DISTINCT ON (channel) channel, state FROM deliveries
                    WHERE state IN ('sent', 'failed', 'dead') AND plan = $1 ORDER BY channel, updated DESC
                 ) latest WHERE state <> 'sent' ORDER BY channel",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            Ok(HealthFacts {
                dead_letters: dead_letters as u64,
                failing_channels,
            })
        })
    }

    fn last_errors(&self) -> Result<Vec<(String, DateTime<Utc>, String)>, StoreError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT DISTINCT ON (channel) channel, updated, last_error FROM deliveries
                 WHERE last_error IS NOT NULL AND plan = $1 ORDER BY channel, updated DESC",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok((
                        r.try_get("channel")?,
                        r.try_get("updated")?,
                        r.try_get("last_error")?,
                    ))
                })
                .collect()
        })
    }

    fn journal(&self, since: DateTime<Utc>) -> Result<Vec<JournalEntry>, StoreError> {
        // `timestamptz` starts in 4713 BC; "since the beginning" is any early date.
        let since = since.max(DateTime::UNIX_EPOCH);
        self.run(async {
            let rows = sqlx::query(
                "SELECT f.item, f.kind, f.scheduled, f.outcome, a.value, COALESCE(a.late, false) AS late, a.via, a.answered, a.note,
                        (SELECT COUNT(*) FROM snoozes s WHERE s.firing = f.id) AS snoozes
                 FROM firings f LEFT JOIN answers a ON a.firing = f.id
                 WHERE f.plan = $5 AND f.purpose = $2 AND f.kind IN ($3, $4) AND f.scheduled >= $1
                 ORDER BY f.scheduled, f.item",
            )
            .bind(since)
            .bind(MAIN_KEY)
            .bind(Kind::Checkin.as_str())
            .bind(Kind::Medication.as_str())
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(JournalEntry {
                        item: r.try_get("item")?,
                        kind: kind(r, "kind")?,
                        scheduled: r.try_get("scheduled")?,
                        outcome: r.try_get("outcome")?,
                        value: r.try_get("value")?,
                        late: r.try_get("late")?,
                        via: r.try_get("via")?,
                        answered: r.try_get("answered")?,
                        note: r.try_get("note")?,
                        snoozes: r.try_get::<i64, _>("snoozes")? as u32,
                    })
                })
                .collect()
        })
    }

    fn escalation_counts(&self, since: DateTime<Utc>) -> Result<(u64, u64), StoreError> {
        self.run(async {
            let count = |like: String| {
                sqlx::query_scalar::<_, i64>(
                    "SELECT COUNT(*) FROM deliveries WHERE plan = $3 AND state = 'sent' AND purpose LIKE $1 AND scheduled >= $2",
                )
                .bind(like)
                .bind(since)
                .bind(self.plan())
                .fetch_one(&self.pool)
            };
            let alerts = count(format!("{ESCALATE_KEY_PREFIX}%")).await?;
            let clears = count(ALL_CLEAR_KEY.to_string()).await?;
            Ok((alerts as u64, clears as u64))
        })
    }

    fn shared_state(&self) -> Result<Option<SharedState>, StoreError> {
        self.run(async {
            let leader = sqlx::query_as::<_, (String, DateTime<Utc>, DateTime<Utc>)>(
                "SELECT owner, elected_at, expires FROM leader WHERE name = 'maintenance' AND expires > now()",
            )
            .fetch_optional(&self.pool)
            .await?
            .map(|(owner, elected_at, expires)| (Term { owner, elected_at }, expires));
            let sending = sqlx::query_as::<_, (String, i64)>(
                "SELECT lease_owner, COUNT(*) FROM deliveries
                 WHERE state = 'pending' AND claimed AND due > now() AND lease_owner IS NOT NULL
                 GROUP BY lease_owner ORDER BY lease_owner",
            )
            .fetch_all(&self.pool)
            .await?
            .into_iter()
            .map(|(o, n)| (o, n as u64))
            .collect();
            Ok(Some(SharedState { leader, sending }))
        })
    }
}
