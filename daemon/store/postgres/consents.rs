//! PostgreSQL: what contacts said about being messaged, per plan.

use super::*;
use crate::store::{ConsentRecord, Consents};

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

    fn record_consent(
        &self,
        contact: &str,
        state: &str,
        how: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.run(async {
            sqlx::query(
                "INSERT INTO consents (plan, contact, state, how, at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(self.plan())
            .bind(contact)
            .bind(state)
            .bind(how)
            .bind(now)
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }

    fn consents(&self) -> Result<Vec<ConsentRecord>, StoreError> {
        self.run(async {
            let rows: Vec<(String, String, String, DateTime<Utc>)> = sqlx::query_as(
                "SELECT DISTINCT ON (contact) contact, state, how, at FROM consents WHERE plan = $1
                 ORDER BY contact, at DESC, ctid DESC",
            )
            .bind(self.plan())
            .fetch_all(&self.pool)
            .await?;
            Ok(rows
                .into_iter()
                .map(|(contact, state, how, at)| ConsentRecord {
                    contact,
                    state,
                    how,
                    at,
                })
                .collect())
        })
    }
}
