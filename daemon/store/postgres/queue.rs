//! PostgreSQL: recording firings idempotently, claiming with `FOR UPDATE SKIP LOCKED`
//! under leases on the database's clock, and recording outcomes under the claim's fence
//! (id, token and owner). SQL stays next to the method that runs it.

use super::*;
use crate::store::{Fence, Maintenance, Queue, SentMark, Term};

/// How long used link and gateway-message nonces are kept (a replay older than this is
/// refused by the link's own expiry, or answers only what was open when it was sent).
const NONCES_KEPT_DAYS: u32 = 400;
/// How often the leader maintains, which `maintain` counts dead letters over.
pub(crate) const MAINTAIN_EVERY: chrono::Duration = chrono::Duration::seconds(5);

/// Most deliveries of one channel claimed in one pass.
const CLAIM_MAX: usize = 4096;

const MARK_SENT: &str = "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, gateway_id = $4, sent_at = $5, updated = now(), claimed = false
     WHERE id = $1 AND claim = $2 AND lease_owner = $3 AND state = 'pending'";

impl Queue for PgLedger {
    fn record_firings(
        &self,
        batch: &[(NewFiring, Vec<NewDelivery>)],
    ) -> Result<Vec<String>, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let new = insert_firings(&mut tx, self.plan(), batch, "dispatched").await?;
            tx.commit().await?;
            Ok(new)
        })
    }

    fn record_missed(&self, firing: &NewFiring) -> Result<(), StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            insert_firing(&mut tx, self.plan(), firing, &[], "missed").await?;
            tx.commit().await
        })
    }

    fn last_scheduled(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.run(async {
            let rows = sqlx::query(
                "SELECT item, MAX(scheduled) AS last FROM firings WHERE plan = $1 GROUP BY item",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("item")?, r.try_get("last")?)))
                .collect()
        })
    }

    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        room: &mut dyn FnMut(&str) -> usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let lease = millis(lease_until - now);
        // Due by the database's clock (one clock for every instance), as far ahead of it as
        // the caller's `now` is ahead of this machine's clock (at most a second).
        let ahead = millis(
            (now - Utc::now()).clamp(chrono::Duration::zero(), chrono::Duration::seconds(1)),
        );
        let channels = self.run(async {
            sqlx::query_scalar::<_, String>(
                "WITH RECURSIVE ch(c) AS (
                    SELECT (SELECT MIN(channel) FROM deliveries WHERE state = 'pending' AND plan = $1)
                    UNION ALL
                    SELECT (SELECT MIN(channel) FROM deliveries WHERE state = 'pending' AND plan = $1 AND channel > ch.c)
                    FROM ch WHERE ch.c IS NOT NULL
                ) SELECT c FROM ch WHERE c IS NOT NULL",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await
        })?;
        let mut claimed = Vec::new();
        for channel in channels {
            let free = room(&channel).min(CLAIM_MAX);
            if free == 0 {
                continue;
            }
            // One statement: rows another instance holds are skipped, not waited for. A
            // row still `claimed` whose lease ran out was in flight on an instance that
            // stopped: whoever sends it again marks it uncertain.
            let rows = self.run(async {
                sqlx::query(&format!(
                    "WITH c AS (
                        SELECT id, due FROM deliveries
                        WHERE state = 'pending' AND plan = $5 AND channel = $1
                            AND due <= now() + make_interval(secs => $6)
                        ORDER BY due, id LIMIT $2 FOR UPDATE SKIP LOCKED
                    )
                    UPDATE deliveries d SET due = now() + make_interval(secs => $3), claimed = true,
                        claim = d.claim + 1, lease_owner = $4, uncertain = d.uncertain OR d.claimed
                    FROM c WHERE d.id = c.id
                    RETURNING {}",
                    DELIVERY_COLUMNS
                        .split(", ")
                        // The claimed delivery says when it was due, not when its lease ends.
                        .map(|c| if c == "due" {
                            "c.due".into()
                        } else {
                            format!("d.{c}")
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .bind(&channel)
                .bind(free as i64)
                .bind(lease)
                .bind(&self.owner)
                .bind(self.plan())
                .bind(ahead)
                .fetch_all(&self.pool)
                .await
            })?;
            let mut batch = rows.iter().map(delivery).collect::<Result<Vec<_>, _>>()?;
            batch.sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
            claimed.extend(batch);
        }
        Ok(claimed)
    }

    fn renew(
        &self,
        held: &[Fence],
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Fence>, StoreError> {
        let lease = millis(lease_until - now);
        let ids: Vec<String> = held.iter().map(|f| f.id.clone()).collect();
        let claims: Vec<i64> = held.iter().map(|f| f.claim).collect();
        let renewed: Vec<(String, i64)> = self.run(async {
            // Rows are locked in id order (as `mark_sent_all` writes them), so a renewal
            // and a group of `sent` marks never wait for each other in a cycle.
            let rows = sqlx::query(
                "WITH held AS (
                    SELECT d.id FROM deliveries d JOIN UNNEST($1::text[], $2::bigint[]) AS h(id, claim)
                      ON d.id = h.id AND d.claim = h.claim
                    WHERE d.lease_owner = $4 AND d.state = 'pending' AND d.claimed AND d.due > now()
                    ORDER BY d.id FOR UPDATE OF d
                 )
                 UPDATE deliveries d SET due = now() + make_interval(secs => $3)
                 FROM held WHERE d.id = held.id
                 RETURNING d.id, d.claim",
            )
            .bind(&ids)
            .bind(&claims)
            .bind(lease)
            .bind(&self.owner)
            .fetch_all(&self.pool)
            .await?;
            rows.iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("claim")?)))
                .collect()
        })?;
        let missing: Vec<&Fence> = held
            .iter()
            .filter(|f| !renewed.iter().any(|(id, c)| *id == f.id && *c == f.claim))
            .collect();
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        // Not renewed because it finished under this very claim meanwhile: not lost.
        let ids: Vec<String> = missing.iter().map(|f| f.id.clone()).collect();
        let finished: Vec<(String, i64)> = self.run(async {
            sqlx::query_as(
                "SELECT id, claim FROM deliveries WHERE id = ANY($1) AND state <> 'pending'",
            )
            .bind(&ids)
            .fetch_all(&self.pool)
            .await
        })?;
        Ok(missing
            .into_iter()
            .filter(|f| !finished.iter().any(|(id, c)| *id == f.id && *c == f.claim))
            .cloned()
            .collect())
    }

    /// Only this instance's own claims of this handle's plan: other instances' leases run
    /// their course, a new process is a new owner, and the other plans this process runs
    /// keep theirs (a plan started by a reload must not release them mid-send).
    fn release_claims(&self, _now: DateTime<Utc>) -> Result<usize, StoreError> {
        self.run(async {
            let n = sqlx::query(
                "UPDATE deliveries SET due = LEAST(due, now()), claimed = false, uncertain = true
                 WHERE state = 'pending' AND claimed AND lease_owner = $1 AND plan = $2",
            )
            .bind(&self.owner)
            .bind(self.plan())
            .execute(&self.pool)
            .await?;
            Ok(n.rows_affected() as usize)
        })
    }

    fn note_consent(&self, id: &str, consent: &str) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query("UPDATE deliveries SET consent = $2 WHERE id = $1")
                .bind(id)
                .bind(consent)
                .execute(&self.pool)
                .await
                .map(|_| ())
        })
    }

    fn retire(&self, reason: &str) -> Result<(usize, usize), StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let deliveries = sqlx::query(
                "UPDATE deliveries SET state = 'cancelled', last_error = $2, updated = now(), claimed = false
                 WHERE id IN (SELECT id FROM deliveries WHERE plan = $1 AND state = 'pending'
                                AND NOT (claimed AND due > now() AND lease_owner <> $3)
                              ORDER BY id FOR UPDATE SKIP LOCKED)",
            )
            .bind(self.plan())
            .bind(reason)
            .bind(&self.owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let steps = sqlx::query(
                "UPDATE watches SET state = 'cancelled' WHERE plan = $1 AND state = 'pending'",
            )
            .bind(self.plan())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok((deliveries as usize, steps as usize))
        })
    }

    fn next_due(&self, except_channels: &[String]) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.run(async {
            sqlx::query_scalar(
                "SELECT MIN(due) FROM deliveries WHERE state = 'pending' AND plan = $2 AND NOT (channel = ANY($1))",
            )
            .bind(except_channels)
            .bind(self.plan())
            .fetch_one(&self.pool)
            .await
        })
    }

    fn mark_sent(
        &self,
        fence: &Fence,
        gateway_id: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query(MARK_SENT)
                .bind(&fence.id)
                .bind(fence.claim)
                .bind(&self.owner)
                .bind(gateway_id)
                .bind(at)
                .execute(&self.pool)
                .await?;
            Ok(n.rows_affected() == 1)
        })
    }

    fn mark_sent_all(&self, marks: &[SentMark]) -> Result<Vec<bool>, StoreError> {
        // One statement; rows locked in id order, as `renew` locks them (no lock cycles).
        let done: Vec<(String, i64)> = self.run(async {
            sqlx::query_as(
                "WITH m AS (
                    SELECT d.id, m.claim, m.gateway_id, m.at FROM deliveries d
                    JOIN UNNEST($1::text[], $2::bigint[], $3::text[], $4::timestamptz[]) AS m(id, claim, gateway_id, at)
                      ON d.id = m.id AND d.claim = m.claim
                    WHERE d.lease_owner = $5 AND d.state = 'pending'
                    ORDER BY d.id FOR UPDATE OF d
                 )
                 UPDATE deliveries d SET state = 'sent', attempts = d.attempts + 1, gateway_id = m.gateway_id,
                        sent_at = m.at, updated = now(), claimed = false
                 FROM m WHERE d.id = m.id
                 RETURNING d.id, d.claim",
            )
            .bind(marks.iter().map(|m| m.fence.id.clone()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.fence.claim).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.gateway_id.clone()).collect::<Vec<_>>())
            .bind(marks.iter().map(|m| m.at).collect::<Vec<_>>())
            .bind(&self.owner)
            .fetch_all(&self.pool)
            .await
        })?;
        let done: std::collections::HashSet<(String, i64)> = done.into_iter().collect();
        Ok(marks
            .iter()
            .map(|m| done.contains(&(m.fence.id.clone(), m.fence.claim)))
            .collect())
    }

    fn mark_retry(
        &self,
        fence: &Fence,
        due: DateTime<Utc>,
        error: &str,
        maybe_sent: bool,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query(&format!(
                "UPDATE deliveries SET attempts = attempts + 1, due = $4, last_error = $5, updated = now(), claimed = false, uncertain = uncertain OR $6 WHERE {FENCED}"
            ))
            .bind(&fence.id)
            .bind(fence.claim)
            .bind(&self.owner)
            .bind(due)
            .bind(error)
            .bind(maybe_sent)
            .execute(&self.pool)
            .await?;
            Ok(n.rows_affected() == 1)
        })
    }

    fn fail_over(
        &self,
        fence: &Fence,
        error: &str,
        next: Option<&NewDelivery>,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let state = if next.is_some() { "failed" } else { "dead" };
            let n = sqlx::query(&format!(
                "UPDATE deliveries SET state = $4, attempts = attempts + 1, last_error = $5, updated = now(), claimed = false WHERE {FENCED}"
            ))
            .bind(&fence.id)
            .bind(fence.claim)
            .bind(&self.owner)
            .bind(state)
            .bind(error)
            .execute(&mut *tx)
            .await?;
            if n.rows_affected() == 0 {
                return Ok(false);
            }
            if let Some(n) = next {
                sqlx::query(
                    "INSERT INTO deliveries (id, plan, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, late, created, updated)
                     SELECT $2, plan, firing, item, kind, purpose, scheduled, $3, $4, $5, 'pending', $6, late, now(), now() FROM deliveries WHERE id = $1
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(&fence.id)
                .bind(&n.id)
                .bind(&n.recipient)
                .bind(&n.channel)
                .bind(n.channel_index as i32)
                .bind(n.due)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(true)
        })
    }

    fn cancel(&self, fence: &Fence, reason: &str) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query(&format!(
                "UPDATE deliveries SET state = 'cancelled', last_error = $4, updated = now(), claimed = false WHERE {FENCED}"
            ))
            .bind(&fence.id)
            .bind(fence.claim)
            .bind(&self.owner)
            .bind(reason)
            .execute(&self.pool)
            .await?;
            Ok(n.rows_affected() == 1)
        })
    }

    fn elect(&self, ttl: chrono::Duration) -> Result<Option<Term>, StoreError> {
        self.run(async {
            let row = sqlx::query(
                "INSERT INTO leader (name, owner, elected_at, expires)
                 VALUES ('maintenance', $1, now(), now() + make_interval(secs => $2))
                 ON CONFLICT (name) DO UPDATE SET
                    owner = EXCLUDED.owner,
                    elected_at = CASE WHEN leader.owner = EXCLUDED.owner AND leader.expires >= now()
                                      THEN leader.elected_at ELSE now() END,
                    expires = EXCLUDED.expires
                 WHERE leader.owner = EXCLUDED.owner OR leader.expires < now()
                 RETURNING owner, elected_at",
            )
            .bind(&self.owner)
            .bind(millis(ttl))
            .fetch_optional(&self.pool)
            .await?;
            row.map(|r| {
                Ok(Term {
                    owner: r.try_get("owner")?,
                    elected_at: r.try_get("elected_at")?,
                })
            })
            .transpose()
        })
    }

    fn maintain(&self, term: &Term) -> Result<Maintenance, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            // Fenced: only while this very term holds (locked, so it can't lapse midway).
            let holds: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM leader WHERE name = 'maintenance' AND owner = $1 AND elected_at = $2
                   AND expires > now() FOR UPDATE",
            )
            .bind(&term.owner)
            .bind(term.elected_at)
            .fetch_optional(&mut *tx)
            .await?;
            if holds.is_none() {
                return Ok(Maintenance::default());
            }
            let rescued = sqlx::query(
                "UPDATE deliveries SET claimed = false, uncertain = true, lease_owner = NULL
                 WHERE id IN (SELECT id FROM deliveries WHERE state = 'pending' AND claimed AND due < now()
                              ORDER BY id FOR UPDATE SKIP LOCKED)",
            )
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let pruned = sqlx::query(&format!(
                "DELETE FROM used_tokens WHERE used < now() - interval '{NONCES_KEPT_DAYS} days'"
            ))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let dead_lettered: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries WHERE state = 'dead' AND updated > now() - make_interval(secs => $1)",
            )
            .bind(millis(MAINTAIN_EVERY))
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Maintenance {
                rescued,
                pruned,
                dead_lettered: dead_lettered as u64,
            })
        })
    }
}
