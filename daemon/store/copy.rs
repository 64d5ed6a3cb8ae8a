//! Moving a one-machine install to a shared server: every row of a SQLite ledger copied
//! into an empty PostgreSQL one, ids, states, answers, steps, snoozes, pauses and used
//! link nonces included, in one PostgreSQL transaction (all or nothing). Must not change
//! the SQLite file.

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

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    rows: Vec<Vec<V>>,
) -> Result<usize, sqlx::Error> {
    let n = rows.len();
    for row in rows {
        let mut q = sqlx::query(sql);
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

/// Copies `src` into `dst`; `None` (nothing written) when `dst` holds firings already.
pub(crate) fn sqlite_to_postgres(
    src: &SqliteLedger,
    dst: &PgLedger,
) -> Result<Option<Copied>, StoreError> {
    let firings = read(
        src,
        "SELECT id, item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap FROM firings ORDER BY id",
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
            ])
        },
    )?;
    let deliveries = read(
        src,
        "SELECT id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, created, updated, sent_at, claimed, claim, uncertain FROM deliveries ORDER BY firing, id",
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
            ])
        },
    )?;
    let answers = read(
        src,
        "SELECT firing, item, kind, scheduled, value, note, via, answered, late FROM answers ORDER BY firing",
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
    dst.run(async move {
        let mut tx = dst.pool.begin().await?;
        let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM firings")
            .fetch_one(&mut *tx)
            .await?;
        if existing > 0 {
            return Ok(None);
        }
        let copied = Copied {
            firings: insert(&mut tx, "INSERT INTO firings (id, item, kind, purpose, scheduled, recorded, outcome, deadline, snooze_cap) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", firings).await?,
            deliveries: insert(&mut tx, "INSERT INTO deliveries (id, firing, item, kind, purpose, scheduled, recipient, channel, channel_index, state, due, attempts, late, last_error, gateway_id, created, updated, sent_at, claimed, claim, uncertain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)", deliveries).await?,
            answers: insert(&mut tx, "INSERT INTO answers (firing, item, kind, scheduled, value, note, via, answered, late) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)", answers).await?,
            steps: insert(&mut tx, "INSERT INTO watches (id, firing, action, step, recipient, due, state) VALUES ($1, $2, $3, $4, $5, $6, $7)", steps).await?,
            snoozes: insert(&mut tx, "INSERT INTO snoozes (firing, at, delay, via) VALUES ($1, $2, $3, $4)", snoozes).await?,
            pauses: insert(&mut tx, "INSERT INTO pauses (id, pause, until_at, created, ended) VALUES ($1, $2, $3, $4, $5)", pauses).await?,
            nonces: insert(&mut tx, "INSERT INTO used_tokens (nonce, used) VALUES ($1, $2)", nonces).await?,
        };
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
