//! PostgreSQL: what contacts said about being messaged, per plan.

use super::*;
use crate::store::Consents;

impl Consents for PgLedger {
    fn withdraw(
        &self,
        contact: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(usize, usize), StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            sqlx::query("INSERT INTO consents (plan, contact, state, how, at) VALUES ($1, $2, 'withdrawn', $3, $4)")
                .bind(self.plan())
                .bind(contact)
                .bind(how)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            let deliveries = sqlx::query(
                "UPDATE deliveries SET state = 'cancelled', last_error = 'the contact asked to stop', claimed = false, updated = now()
                 WHERE id IN (SELECT id FROM deliveries WHERE plan = $1 AND recipient = $2 AND state = 'pending'
                                AND NOT (claimed AND due > now() AND lease_owner <> $3)
                              ORDER BY id FOR UPDATE SKIP LOCKED)",
            )
            .bind(self.plan())
            .bind(contact)
            .bind(&self.owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            let steps = sqlx::query(
                "UPDATE watches SET state = 'cancelled' WHERE plan = $1 AND recipient = $2 AND state = 'pending'",
            )
            .bind(self.plan())
            .bind(contact)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            Ok((deliveries as usize, steps as usize))
        })
    }

    fn withdrawn(&self) -> Result<Vec<(String, DateTime<Utc>)>, StoreError> {
        self.run(async {
            sqlx::query_as(
                "SELECT DISTINCT ON (contact) contact, at, state FROM consents WHERE plan = $1
                 ORDER BY contact, at DESC",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await
            .map(|rows: Vec<(String, DateTime<Utc>, String)>| {
                rows.into_iter()
                    .filter(|(_, _, state)| state == "withdrawn")
                    .map(|(c, at, _)| (c, at))
                    .collect()
            })
        })
    }
}
