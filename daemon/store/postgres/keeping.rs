//! PostgreSQL: pruning a plan's old history, and erasing it (rows deleted, then the
//! tables rewritten with `VACUUM FULL` so the old row versions leave the table files).

use super::*;
use crate::store::Keeping;

/// Deletes the chosen firings of this plan (before `before`, all with `None`; with
/// `finished`, only those with nothing pending) and everything hanging off them.
async fn remove(
    tx: &mut Transaction<'_, Postgres>,
    plan: &str,
    before: Option<DateTime<Utc>>,
    finished: bool,
) -> Result<u64, sqlx::Error> {
    let ids: Vec<i64> = sqlx::query_scalar(
        "SELECT f.id FROM firings f WHERE f.plan = $1 AND ($2::timestamptz IS NULL OR f.scheduled < $2)
           AND (NOT $3 OR (NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.firing = f.id AND d.state = 'pending')
                           AND NOT EXISTS (SELECT 1 FROM watches w WHERE w.firing = f.id AND w.state = 'pending')))
         ORDER BY f.id FOR UPDATE",
    )
    .bind(plan)
    .bind(before)
    .bind(finished)
    .fetch_all(&mut **tx)
    .await?;
    for table in ["deliveries", "answers", "watches", "snoozes", "firings"] {
        let column = if table == "firings" { "id" } else { "firing" };
        sqlx::query(&format!("DELETE FROM {table} WHERE {column} = ANY($1)"))
            .bind(&ids)
            .execute(&mut **tx)
            .await?;
    }
    Ok(ids.len() as u64)
}

impl Keeping for PgLedger {
    fn prune(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let n = remove(&mut tx, self.plan(), Some(before), true).await?;
            tx.commit().await?;
            Ok(n)
        })
    }

    fn forget(&self, before: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await?;
            let n = remove(&mut tx, self.plan(), before, false).await?;
            sqlx::query(
                "DELETE FROM pauses WHERE plan = $1 AND ($2::timestamptz IS NULL OR created < $2)",
            )
            .bind(self.plan())
            .bind(before)
            .execute(&mut *tx)
            .await?;
            sqlx::query("INSERT INTO deletions (plan, at, before) VALUES ($1, $2, $3)")
                .bind(self.plan())
                .bind(now)
                .bind(before)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            // Deleted rows stay in the table files until they are rewritten.
            sqlx::query("VACUUM FULL firings, deliveries, answers, watches, snoozes, pauses")
                .execute(&self.pool)
                .await?;
            Ok(n)
        })
    }

    fn deletions(&self) -> Result<Vec<crate::store::Deletion>, StoreError> {
        self.run(async {
            sqlx::query_as("SELECT at, before FROM deletions WHERE plan = $1 ORDER BY at")
                .bind(self.plan())
                .fetch_all(&self.pool)
                .await
        })
    }
}
