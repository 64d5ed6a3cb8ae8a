//! The PostgreSQL ledger, for several kithd instances sharing one queue: the same traits
//! and semantics as SQLite, with the patterns proven by River, Oban and graphile-worker.
//! Planning is idempotent (`UNIQUE (plan, item, scheduled, purpose)` and `ON CONFLICT DO
//! NOTHING`); claims are one statement (`FOR UPDATE SKIP LOCKED`, then a lease with this
//! instance as owner and a new fencing token), committed before any gateway call; leases
//! and due times are read on the database's clock; outcomes match id, token and owner; a
//! claim taken from a lease that ran out is marked `uncertain` (its first owner may have
//! sent it). Steps and answers lock the step's rows, so an answer and the step that would
//! alert someone can't both win. The trait is blocking: each call runs on the ledger's own
//! small runtime. Must not contain scheduling or retry policy.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};

use super::{Delivery, NewDelivery, NewFiring, State, StoreError};
use crate::vocab::Kind;

mod queue;
pub(crate) use queue::MAINTAIN_EVERY;
mod reports;
mod schema;
mod steps;

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // Connection failures, and the server shutting down or refusing connections
        // (SQLSTATE classes 08, 57P and 53): the database may come back.
        let unreachable = match &e {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|c| {
                c.starts_with("08") || c.starts_with("57P") || c.starts_with("53")
            }),
            _ => false,
        };
        if unreachable {
            StoreError::Unreachable(e.to_string())
        } else {
            StoreError::Postgres(e.to_string())
        }
    }
}

pub(crate) struct PgLedger {
    pub(in crate::store) pool: PgPool,
    /// Drives the pool's connections; every call blocks on it. Shut down in the
    /// background on drop (the last handle may go on an async worker).
    rt: Option<tokio::runtime::Runtime>,
    /// This instance's name in leases: host, process and a random part.
    owner: String,
    /// Where the ledger is, with any password left out, for errors.
    shown: String,
}

/// A URL as errors may show it: without its password.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "the PostgreSQL URL".into(),
    }
}

const DELIVERY_COLUMNS: &str = "id, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, updated, sent_at, claim, uncertain";

fn kind(row: &PgRow, col: &str) -> Result<Kind, sqlx::Error> {
    let s: String = row.try_get(col)?;
    s.parse()
        .map_err(|e: crate::vocab::UnknownWord| sqlx::Error::ColumnDecode {
            index: col.into(),
            source: Box::new(e),
        })
}

fn delivery(row: &PgRow) -> Result<Delivery, sqlx::Error> {
    let state: String = row.try_get("state")?;
    Ok(Delivery {
        id: row.try_get("id")?,
        item: row.try_get("item")?,
        kind: kind(row, "kind")?,
        purpose: row.try_get("purpose")?,
        scheduled: row.try_get("scheduled")?,
        recipient: row.try_get("recipient")?,
        channel: row.try_get("channel")?,
        channel_index: row.try_get::<i32, _>("channel_index")? as u32,
        state: State::parse(&state).unwrap_or(State::Pending),
        due: row.try_get("due")?,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        late: row.try_get("late")?,
        last_error: row.try_get("last_error")?,
        gateway_id: row.try_get("gateway_id")?,
        updated: row.try_get("updated")?,
        sent_at: row.try_get("sent_at")?,
        claim: row.try_get("claim")?,
        uncertain: row.try_get("uncertain")?,
    })
}

/// Records a firing once, with its deliveries and (the first time) its steps; the ids of
/// the deliveries that were new. Runs inside the caller's transaction; a second instance
/// recording the same firing at the same moment waits for the first and adds nothing.
async fn insert_firing(
    tx: &mut Transaction<'_, Postgres>,
    firing: &NewFiring,
    deliveries: &[NewDelivery],
    outcome: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO firings (item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap)
         VALUES ($1, $2, $3, $4, now(), $5, $6, $7)
         ON CONFLICT (plan, item, scheduled, purpose) DO NOTHING RETURNING id",
    )
    .bind(&firing.item)
    .bind(firing.kind.as_str())
    .bind(&firing.purpose)
    .bind(firing.scheduled)
    .bind(outcome)
    .bind(firing.deadline)
    .bind(firing.snooze_cap.map(|c| c.num_seconds()))
    .fetch_optional(&mut **tx)
    .await?;
    let firing_id: i64 = match inserted {
        Some(id) => id,
        None => {
            sqlx::query_scalar(
                "SELECT id FROM firings WHERE plan = '' AND item = $1 AND scheduled = $2 AND purpose = $3",
            )
            .bind(&firing.item)
            .bind(firing.scheduled)
            .bind(&firing.purpose)
            .fetch_one(&mut **tx)
            .await?
        }
    };
    let mut new = Vec::new();
    for d in deliveries {
        let n = sqlx::query(
            "INSERT INTO deliveries (id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, late, created, updated)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', $10, $11, now(), now())
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&d.id)
        .bind(firing_id)
        .bind(&firing.item)
        .bind(firing.kind.as_str())
        .bind(&firing.purpose)
        .bind(firing.scheduled)
        .bind(&d.recipient)
        .bind(&d.channel)
        .bind(d.channel_index as i32)
        .bind(d.due)
        .bind(d.late)
        .execute(&mut **tx)
        .await?
        .rows_affected();
        if n == 1 {
            new.push(d.id.clone());
        }
    }
    if inserted.is_some() {
        for w in &firing.watches {
            sqlx::query(
                "INSERT INTO watches (firing, action, step, recipient, due, state) VALUES ($1, $2, $3, $4, $5, 'pending')
                 ON CONFLICT (firing, action, step) DO NOTHING",
            )
            .bind(firing_id)
            .bind(w.action.as_str())
            .bind(w.step as i32)
            .bind(&w.recipient)
            .bind(w.due)
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(new)
}

impl PgLedger {
    /// Connects to `url` (`postgresql://…`, with `sslmode` as libpq reads it) and
    /// migrates under the migrator's advisory lock.
    pub(crate) fn open(url: &str) -> Result<Self, StoreError> {
        let shown = shown(url);
        let fail = |message: String| StoreError::Open {
            path: shown.clone().into(),
            message,
        };
        let options: PgConnectOptions = url
            .parse()
            .map_err(|e: sqlx::Error| fail(format!("not a PostgreSQL URL: {e}")))?;
        let options = options.application_name("kithd");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kithd-pg")
            .enable_all()
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let pool = rt
            .block_on(
                PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options),
            )
            .map_err(|e| fail(e.to_string()))?;
        let migrator = schema::migrator();
        rt.block_on(async {
            // Refuse a database a newer kithd migrated further than this one knows.
            let newest: Option<i64> = sqlx::query_scalar(
                "SELECT MAX(version) FROM _sqlx_migrations WHERE to_regclass('_sqlx_migrations') IS NOT NULL",
            )
            .fetch_one(&pool)
            .await
            .unwrap_or(None);
            if let Some(found) = newest.filter(|v| *v > schema::VERSION) {
                return Err(StoreError::TooNew {
                    path: shown.clone().into(),
                    found,
                    known: schema::VERSION,
                });
            }
            migrator
                .run(&pool)
                .await
                .map_err(|e| fail(format!("migrating: {e}")))
        })?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let owner = format!(
            "{host}:{}:{:08x}",
            std::process::id(),
            rand::random::<u32>()
        );
        Ok(Self {
            pool,
            rt: Some(rt),
            owner,
            shown,
        })
    }

    pub(in crate::store) fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let rt = self
            .rt
            .as_ref()
            .expect("the runtime lives as long as the ledger");
        Ok(rt.block_on(f)?)
    }
}

impl Drop for PgLedger {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl PgLedger {
    /// Where it is, without a password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }
}

impl std::fmt::Debug for PgLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgLedger")
            .field("at", &self.shown)
            .field("owner", &self.owner)
            .finish()
    }
}

/// Shared with the submodules: a fence's condition, as `$1` id, `$2` token, `$3` owner.
const FENCED: &str = "id = $1 AND claim = $2 AND lease_owner = $3 AND state = 'pending'";

/// An interval in whole milliseconds, as bound to `make_interval`.
fn millis(d: chrono::Duration) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            super::shown("postgresql://kithd:hunter2@db.example.org:5432/kithd?sslmode=require"),
            "postgresql://kithd:***@db.example.org:5432/kithd?sslmode=require"
        );
    }
}
