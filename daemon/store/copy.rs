//! Moving a one-machine install to a shared server: every row of a SQLite ledger (or of
//! each plan's ledger, for a directory of plans) copied into an empty PostgreSQL one,
//! states, answers, steps, snoozes, pauses, used link nonces, what contacts said, deletions
//! and the person's passphrase hash included, keyed by the
//! plan's id, in one PostgreSQL transaction (all or nothing). Delivery ids stay as they
//! are; row numbers of later plans follow those of earlier ones. Must not change the
//! SQLite files.

use chrono::{DateTime, TimeZone, Utc};
use rusqlite::params;
use sqlx::{Postgres, Transaction};

use super::{PgLedger, SqliteLedger, StoreError};

/// How many rows of each table were copied.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Copied {
    pub firings: usize,
    pub deliveries: usize,
    pub answers: usize,
    pub steps: usize,
    pub snoozes: usize,
    pub pauses: usize,
    pub nonces: usize,
}

fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn at_opt(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.map(at)
}

/// A value read from SQLite, bound in the PostgreSQL statement.
enum V {
    I(Option<i64>),
    I32(i32),
    T(Option<String>),
    At(Option<DateTime<Utc>>),
    B(bool),
}

/// Inserts each row, with `extra` (a plan's row-number offsets and its id) bound after it.
async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    rows: Vec<Vec<V>>,
    extra: &[(Option<i64>, Option<&str>)],
) -> Result<usize, sqlx::Error> {
    let n = rows.len();
    for row in rows {
        let mut q = sqlx::query(sql);
        for (offset, plan) in extra {
            q = match (offset, plan) {
                (Some(o), _) => q.bind(*o),
                (None, p) => q.bind(p.unwrap_or("")),
            };
        }
        for v in row {
            q = match v {
                V::I(i) => q.bind(i),
                V::I32(i) => q.bind(i),
                V::T(t) => q.bind(t),
                V::At(a) => q.bind(a),
                V::B(b) => q.bind(b),
            };
        }
        q.execute(&mut **tx).await?;
    }
    Ok(n)
}

/// Reads every row of `sql` from SQLite, turning each into values with `row`.
fn read(
    src: &SqliteLedger,
    sql: &str,
    row: impl Fn(&rusqlite::Row) -> rusqlite::Result<Vec<V>>,
) -> Result<Vec<Vec<V>>, StoreError> {
    let conn = src.conn();
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map(params![], |r| row(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One ledger's rows, read.
struct Rows {
    firings: Vec<Vec<V>>,
    deliveries: Vec<Vec<V>>,
    answers: Vec<Vec<V>>,
    steps: Vec<Vec<V>>,
    snoozes: Vec<Vec<V>>,
    pauses: Vec<Vec<V>>,
    nonces: Vec<Vec<V>>,
    /// What contacts said, deletions, and the passphrase hash: kept as they are.
    consents: Vec<Vec<V>>,
    deletions: Vec<Vec<V>>,
    access: Vec<Vec<V>>,
}

/// Copies every source (a plan's id, or `None` for a plan run on its own, and its
/// ledger) into `dst`; `None` (nothing written) when `dst` holds firings already.
pub(crate) fn sqlite_to_postgres(
    sources: &[(Option<String>, SqliteLedger)],
    dst: &PgLedger,
) -> Result<Option<Copied>, StoreError> {
    let read_all: Vec<(Option<String>, Rows)> = sources
        .iter()
        .map(|(plan, src)| Ok((plan.clone(), rows(src)?)))
        .collect::<Result<_, StoreError>>()?;
    dst.run(async move {
        let mut tx = dst.pool.begin().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM firings")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Ok(None);
        }
        let mut copied = Copied::default();
        for (plan, rows) in read_all {
            let plan = plan.as_deref();
            let next = |table: &'static str| format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
            let f: i64 = sqlx::query_scalar(&next("firings")).fetch_one(&mut *tx).await?;
            let w: i64 = sqlx::query_scalar(&next("watches")).fetch_one(&mut *tx).await?;
            let p: i64 = sqlx::query_scalar(&next("pauses")).fetch_one(&mut *tx).await?;
            let (f, w, p, plan) = ((Some(f), None), (Some(w), None), (Some(p), None), (None, plan));
            copied.firings += insert(&mut tx, "INSERT INTO firings (id, plan, item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap, alert_on) VALUES ($3 + $1, $2, $4, $5, $6, $7, $8, $9, $10, $11, $12)", rows.firings, &[f, plan]).await?;
            copied.deliveries += insert(&mut tx, "INSERT INTO deliveries (plan, id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, created, updated, sent_at, claimed, claim, uncertain, consent) VALUES ($2, $3, $4 + $1, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)", rows.deliveries, &[f, plan]).await?;
            copied.answers += insert(&mut tx, "INSERT INTO answers (plan, firing, item, kind, scheduled, value, note, via, answered, late, heard) VALUES ($2, $3 + $1, $4, $5, $6, $7, $8, $9, $10, $11, $12)", rows.answers, &[f, plan]).await?;
            copied.steps += insert(&mut tx, "INSERT INTO watches (plan, id, firing, action, step, recipient, due, state) VALUES ($3, $4 + $1, $5 + $2, $6, $7, $8, $9, $10)", rows.steps, &[w, f, plan]).await?;
            copied.snoozes += insert(&mut tx, "INSERT INTO snoozes (firing, at, delay, via) VALUES ($2 + $1, $3, $4, $5)", rows.snoozes, &[f]).await?;
            copied.pauses += insert(&mut tx, "INSERT INTO pauses (plan, id, pause, until_at, created, ended) VALUES ($2, $3 + $1, $4, $5, $6, $7)", rows.pauses, &[p, plan]).await?;
            copied.nonces += insert(&mut tx, "INSERT INTO used_tokens (nonce, used) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING", rows.nonces, &[]).await?;
            insert(&mut tx, "INSERT INTO consents (plan, contact, state, how, at) VALUES ($1, $2, $3, $4, $5)", rows.consents, &[plan]).await?;
            insert(&mut tx, "INSERT INTO deletions (plan, at, before) VALUES ($1, $2, $3)", rows.deletions, &[plan]).await?;
            insert(&mut tx, "INSERT INTO access (plan, hash, set_at) VALUES ($1, $2, $3)", rows.access, &[plan]).await?;
        }
        // The copied ids are taken: new rows continue after them.
        for (table, seq) in [("firings", "firings_id_seq"), ("watches", "watches_id_seq"), ("pauses", "pauses_id_seq")] {
            sqlx::query(&format!(
                "SELECT setval('{seq}', COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
            ))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Some(copied))
    })
}

/// Every row of one SQLite ledger.
fn rows(src: &SqliteLedger) -> Result<Rows, StoreError> {
    let firings = read(
        src,
        "SELECT id, item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap, alert_on FROM firings ORDER BY id",
        |r| {
            Ok(vec![
                V::I(r.get(0)?),
                V::T(r.get(1)?),
                V::T(r.get(2)?),
                V::T(r.get(3)?),
                V::At(Some(at(r.get(4)?))),
                V::At(Some(at(r.get(5)?))),
                V::T(r.get(6)?),
                V::At(at_opt(r.get(7)?)),
                V::I(r.get(8)?),
                V::T(r.get(9)?),
            ])
        },
    )?;
    let deliveries = read(
        src,
        "SELECT id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, created, updated, sent_at, claimed, claim, uncertain, consent FROM deliveries ORDER BY firing, id",
        |r| {
            Ok(vec![
                V::T(r.get(0)?),
                V::I(r.get(1)?),
                V::T(r.get(2)?),
                V::T(r.get(3)?),
                V::T(r.get(4)?),
                V::At(Some(at(r.get(5)?))),
                V::T(r.get(6)?),
                V::T(r.get(7)?),
                V::I32(r.get(8)?),
                V::T(r.get(9)?),
                V::At(Some(at(r.get(10)?))),
                V::I32(r.get(11)?),
                V::B(r.get::<_, i64>(12)? != 0),
                V::T(r.get(13)?),
                V::T(r.get(14)?),
                V::At(Some(at(r.get(15)?))),
                V::At(Some(at(r.get(16)?))),
                V::At(at_opt(r.get(17)?)),
                // A claim left by the stopped daemon is in flight no more: it comes back
                // due, and uncertain, as at the daemon's own next start.
                V::B(false),
                V::I(r.get(19)?),
                V::B(r.get::<_, i64>(20)? != 0 || r.get::<_, i64>(18)? != 0),
                V::T(r.get(21)?),
            ])
        },
    )?;
    let answers = read(
        src,
        "SELECT firing, item, kind, scheduled, value, note, via, answered, late, heard FROM answers ORDER BY firing",
        |r| {
            Ok(vec![
                V::I(r.get(0)?),
                V::T(r.get(1)?),
                V::T(r.get(2)?),
                V::At(Some(at(r.get(3)?))),
                V::T(r.get(4)?),
                V::T(r.get(5)?),
                V::T(r.get(6)?),
                V::At(Some(at(r.get(7)?))),
                V::B(r.get::<_, i64>(8)? != 0),
                V::B(r.get::<_, i64>(9)? != 0),
            ])
        },
    )?;
    let steps = read(
        src,
        "SELECT id, firing, action, step, recipient, due, state FROM watches ORDER BY id",
        |r| {
            Ok(vec![
                V::I(r.get(0)?),
                V::I(r.get(1)?),
                V::T(r.get(2)?),
                V::I32(r.get(3)?),
                V::T(r.get(4)?),
                V::At(Some(at(r.get(5)?))),
                V::T(r.get(6)?),
            ])
        },
    )?;
    let snoozes = read(src, "SELECT firing, at, delay, via FROM snoozes", |r| {
        Ok(vec![
            V::I(r.get(0)?),
            V::At(Some(at(r.get(1)?))),
            V::I(r.get(2)?),
            V::T(r.get(3)?),
        ])
    })?;
    let pauses = read(
        src,
        "SELECT id, pause, until_at, created, ended FROM pauses ORDER BY id",
        |r| {
            Ok(vec![
                V::I(r.get(0)?),
                V::T(r.get(1)?),
                V::At(Some(at(r.get(2)?))),
                V::At(Some(at(r.get(3)?))),
                V::At(at_opt(r.get(4)?)),
            ])
        },
    )?;
    let nonces = read(src, "SELECT nonce, used FROM used_tokens", |r| {
        Ok(vec![V::T(r.get(0)?), V::At(Some(at(r.get(1)?)))])
    })?;
    let consents = read(
        src,
        "SELECT contact, state, how, at FROM consents ORDER BY at, rowid",
        |r| {
            Ok(vec![
                V::T(r.get(0)?),
                V::T(r.get(1)?),
                V::T(r.get(2)?),
                V::At(Some(at(r.get(3)?))),
            ])
        },
    )?;
    let deletions = read(src, "SELECT at, before FROM deletions", |r| {
        Ok(vec![V::At(Some(at(r.get(0)?))), V::At(at_opt(r.get(1)?))])
    })?;
    let access = read(src, "SELECT hash, set_at FROM access", |r| {
        Ok(vec![V::T(r.get(0)?), V::At(Some(at(r.get(1)?)))])
    })?;
    Ok(Rows {
        firings,
        deliveries,
        answers,
        steps,
        snoozes,
        pauses,
        nonces,
        consents,
        deletions,
        access,
    })
}
