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

mod access;
mod consents;
mod keeping;
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

/// A handle on one database: each plan of a directory has one (`for_plan`), sharing the
/// pool, the runtime and the owner name, its queries keyed by its plan id.
#[derive(Clone)]
pub(crate) struct PgLedger {
    pub(in crate::store) pool: PgPool,
    /// Drives the pool's connections; every call blocks on it.
    rt: std::sync::Arc<Driver>,
    /// This instance's name in leases: host, process and a random part.
    owner: String,
    /// Where the ledger is, with any password left out, for errors.
    shown: String,
    /// The plan id of a directory's plan: the `plan` column of its rows, and part of the
    /// delivery ids it makes. `None` for a plan run on its own (`''` in the column).
    pub(in crate::store) scope: Option<String>,
}

/// The ledger's runtime, shut down in the background when the last handle goes (it may go
/// on an async worker, where blocking is not allowed).
struct Driver(Option<tokio::runtime::Runtime>);

impl Drop for Driver {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
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

const DELIVERY_COLUMNS: &str = "id, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, updated, sent_at, claim, uncertain, consent";

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
        consent: row.try_get("consent")?,
    })
}

/// Records a firing once, with its deliveries and (the first time) its steps; the ids of
/// the deliveries that were new. See `insert_firings`.
async fn insert_firing(
    tx: &mut Transaction<'_, Postgres>,
    plan: &str,
    firing: &NewFiring,
    deliveries: &[NewDelivery],
    outcome: &str,
) -> Result<Vec<String>, sqlx::Error> {
    insert_firings(tx, plan, &[(firing.clone(), deliveries.to_vec())], outcome).await
}

/// Records a batch of firings once each, with their deliveries and (for firings new here)
/// their steps, in three statements however large the batch; the ids of the deliveries
/// that were new. Runs inside the caller's transaction. Rows go in key order, so instances
/// recording the same firings at the same moment queue behind each other instead of
/// deadlocking, and the later ones add nothing.
async fn insert_firings(
    tx: &mut Transaction<'_, Postgres>,
    plan: &str,
    batch: &[(NewFiring, Vec<NewDelivery>)],
    outcome: &str,
) -> Result<Vec<String>, sqlx::Error> {
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by(|a, b| {
        let (fa, fb) = (&batch[*a].0, &batch[*b].0);
        (&fa.item, fa.scheduled, &fa.purpose).cmp(&(&fb.item, fb.scheduled, &fb.purpose))
    });
    let col = |f: &dyn Fn(&NewFiring) -> String| -> Vec<String> {
        order.iter().map(|i| f(&batch[*i].0)).collect()
    };
    let items = col(&|f| f.item.clone());
    let kinds = col(&|f| f.kind.as_str().to_string());
    let purposes = col(&|f| f.purpose.clone());
    let scheduled: Vec<DateTime<Utc>> = order.iter().map(|i| batch[*i].0.scheduled).collect();
    let deadlines: Vec<Option<DateTime<Utc>>> =
        order.iter().map(|i| batch[*i].0.deadline).collect();
    let caps: Vec<Option<i64>> = order
        .iter()
        .map(|i| batch[*i].0.snooze_cap.map(|c| c.num_seconds()))
        .collect();
    let alert_on: Vec<Option<String>> = order
        .iter()
        .map(|i| batch[*i].0.alert_on.map(|a| a.key()))
        .collect();
    let inserted: Vec<(i64, String, DateTime<Utc>, String)> = sqlx::query_as(
        "INSERT INTO firings (plan, item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap, alert_on)
         SELECT $8, item, kind, purpose, scheduled, now(), $5, deadline, cap, alert_on
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[], $6::timestamptz[], $7::bigint[], $9::text[])
              WITH ORDINALITY AS b(item, kind, purpose, scheduled, deadline, cap, alert_on, n)
         ORDER BY n
         ON CONFLICT (plan, item, scheduled, purpose) DO NOTHING
         RETURNING id, item, scheduled, purpose",
    )
    .bind(&items)
    .bind(&kinds)
    .bind(&purposes)
    .bind(&scheduled)
    .bind(outcome)
    .bind(&deadlines)
    .bind(&caps)
    .bind(plan)
    .bind(&alert_on)
    .fetch_all(&mut **tx)
    .await?;
    // Keyed at the database's precision (microseconds), as it returns them.
    let key = |item: &str, at: DateTime<Utc>, purpose: &str| {
        (item.to_string(), at.timestamp_micros(), purpose.to_string())
    };
    let new_firings: std::collections::HashSet<_> = inserted
        .iter()
        .map(|(_, i, at, p)| key(i, *at, p))
        .collect();
    let ids: std::collections::HashMap<_, i64> = sqlx::query_as::<_, (i64, String, DateTime<Utc>, String)>(
        "SELECT f.id, f.item, f.scheduled, f.purpose FROM firings f
         JOIN UNNEST($1::text[], $2::timestamptz[], $3::text[]) AS b(item, scheduled, purpose)
           ON f.plan = $4 AND f.item = b.item AND f.scheduled = b.scheduled AND f.purpose = b.purpose",
    )
    .bind(&items)
    .bind(&scheduled)
    .bind(&purposes)
    .bind(plan)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|(id, i, at, p)| (key(&i, at, &p), id))
    .collect();
    // Deliveries, in id order.
    let mut rows: Vec<(&NewFiring, &NewDelivery, i64)> = Vec::new();
    for (f, ds) in batch {
        let Some(id) = ids.get(&key(&f.item, f.scheduled, &f.purpose)) else {
            continue;
        };
        rows.extend(ds.iter().map(|d| (f, d, *id)));
    }
    rows.sort_by(|a, b| a.1.id.cmp(&b.1.id));
    let new: Vec<String> = if rows.is_empty() {
        Vec::new()
    } else {
        sqlx::query_scalar(
            "INSERT INTO deliveries (id, plan, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, late, created, updated)
             SELECT id, $12, firing, item, kind, purpose, scheduled, recipient, channel, idx, 'pending', due, late, now(), now()
             FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::int[], $10::timestamptz[], $11::bool[])
                  WITH ORDINALITY AS b(id, firing, item, kind, purpose, scheduled, recipient, channel, idx, due, late, n)
             ORDER BY n
             ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(rows.iter().map(|r| r.1.id.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.2).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.item.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.kind.as_str().to_string()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.purpose.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.0.scheduled).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.recipient.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.channel.clone()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.channel_index as i32).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.due).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.1.late).collect::<Vec<_>>())
        .bind(plan)
        .fetch_all(&mut **tx)
        .await?
    };
    // Steps, only for the firings recorded here for the first time.
    let mut steps: Vec<(i64, &crate::store::NewWatch)> = Vec::new();
    for (f, _) in batch {
        let k = key(&f.item, f.scheduled, &f.purpose);
        if let (true, Some(id)) = (new_firings.contains(&k), ids.get(&k)) {
            steps.extend(f.watches.iter().map(|w| (*id, w)));
        }
    }
    if !steps.is_empty() {
        sqlx::query(
            "INSERT INTO watches (plan, firing, action, step, recipient, due, state)
             SELECT $6, firing, action, step, recipient, due, 'pending'
             FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::timestamptz[]) AS b(firing, action, step, recipient, due)
             ON CONFLICT (firing, action, step) DO NOTHING",
        )
        .bind(steps.iter().map(|s| s.0).collect::<Vec<_>>())
        .bind(steps.iter().map(|s| s.1.action.as_str().to_string()).collect::<Vec<_>>())
        .bind(steps.iter().map(|s| s.1.step as i32).collect::<Vec<_>>())
        .bind(steps.iter().map(|s| s.1.recipient.clone()).collect::<Vec<_>>())
        .bind(steps.iter().map(|s| s.1.due).collect::<Vec<_>>())
        .bind(plan)
        .execute(&mut **tx)
        .await?;
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
            rt: std::sync::Arc::new(Driver(Some(rt))),
            owner,
            shown,
            scope: None,
        })
    }

    pub(in crate::store) fn run<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, sqlx::Error>>,
    ) -> Result<T, StoreError> {
        let rt = self
            .rt
            .0
            .as_ref()
            .expect("the runtime lives as long as the ledger");
        Ok(rt.block_on(f)?)
    }
}

impl PgLedger {
    /// Where it is, without a password.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// A handle on the same database for the plan `id` of a directory of plans (`None`: a
    /// plan run on its own). Everything it records and reads is that plan's.
    pub(crate) fn for_plan(&self, id: Option<&str>) -> Self {
        Self {
            scope: id.map(str::to_string),
            ..self.clone()
        }
    }

    /// The value of the `plan` column for this handle's rows.
    pub(in crate::store) fn plan(&self) -> &str {
        self.scope.as_deref().unwrap_or("")
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
mod scope_tests;

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
