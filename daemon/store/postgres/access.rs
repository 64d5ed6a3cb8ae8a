//! PostgreSQL: the person's passphrase hash, per plan.

use super::*;
use crate::store::Access;

impl Access for PgLedger {
    fn set_passphrase(&self, hash: Option<&str>, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.run(async {
            match hash {
                Some(h) => sqlx::query(
                    "INSERT INTO access (plan, hash, set_at) VALUES ($1, $2, $3)
                     ON CONFLICT (plan) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                )
                .bind(self.plan())
                .bind(h)
                .bind(now),
                None => sqlx::query("DELETE FROM access WHERE plan = $1").bind(self.plan()),
            }
            .execute(&self.pool)
            .await
            .map(|_| ())
        })
    }

    fn passphrase(&self) -> Result<Option<(String, DateTime<Utc>)>, StoreError> {
        self.run(async {
            sqlx::query_as("SELECT hash, set_at FROM access WHERE plan = $1")
                .bind(self.plan())
                .fetch_optional(&self.pool)
                .await
        })
    }
}
