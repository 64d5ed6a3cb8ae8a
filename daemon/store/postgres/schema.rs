//! The PostgreSQL schema, applied by sqlx's migrator on start under its advisory lock (so
//! instances starting together migrate once). Times are `timestamptz`; every row carries
//! its plan id (`''` for a single plan) so one database can hold many plans. Must not hold
//! queries other than schema changes.

use std::borrow::Cow;

use sqlx::migrate::{Migration, MigrationType, Migrator};

/// Each entry is one migration, applied in order, each in its own transaction.
const MIGRATIONS: &[(&str, &str)] = &[
    (
        "the ledger",
        "CREATE TABLE firings (
        id BIGSERIAL PRIMARY KEY,
        plan TEXT NOT NULL DEFAULT '',
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT NOT NULL,
        scheduled TIMESTAMPTZ NOT NULL,
        recorded TIMESTAMPTZ NOT NULL,
        outcome TEXT NOT NULL,
        deadline TIMESTAMPTZ,
        snooze_cap BIGINT,
        UNIQUE (plan, item, scheduled, purpose)
    );
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        plan TEXT NOT NULL DEFAULT '',
        firing BIGINT NOT NULL REFERENCES firings(id),
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT NOT NULL,
        scheduled TIMESTAMPTZ NOT NULL,
        recipient TEXT NOT NULL,
        channel TEXT NOT NULL,
        channel_index INTEGER NOT NULL,
        state TEXT NOT NULL,
        due TIMESTAMPTZ NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        late BOOLEAN NOT NULL DEFAULT false,
        last_error TEXT,
        gateway_id TEXT,
        created TIMESTAMPTZ NOT NULL,
        updated TIMESTAMPTZ NOT NULL,
        sent_at TIMESTAMPTZ,
        claimed BOOLEAN NOT NULL DEFAULT false,
        claim BIGINT NOT NULL DEFAULT 0,
        lease_owner TEXT,
        uncertain BOOLEAN NOT NULL DEFAULT false
    );
    -- Claims and next-due lookups read only pending rows, by channel in due order.
    CREATE INDEX deliveries_pending ON deliveries (channel, due, id) WHERE state = 'pending';
    CREATE INDEX deliveries_item ON deliveries (plan, item, scheduled);
    CREATE INDEX deliveries_updated ON deliveries (updated);
    CREATE INDEX firings_item ON firings (plan, item, scheduled);
    CREATE TABLE answers (
        firing BIGINT PRIMARY KEY REFERENCES firings(id),
        plan TEXT NOT NULL DEFAULT '',
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        scheduled TIMESTAMPTZ NOT NULL,
        value TEXT NOT NULL,
        note TEXT,
        via TEXT NOT NULL,
        answered TIMESTAMPTZ NOT NULL,
        late BOOLEAN NOT NULL
    );
    CREATE TABLE watches (
        id BIGSERIAL PRIMARY KEY,
        firing BIGINT NOT NULL REFERENCES firings(id),
        action TEXT NOT NULL,
        step INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        due TIMESTAMPTZ NOT NULL,
        state TEXT NOT NULL,
        UNIQUE (firing, action, step)
    );
    CREATE INDEX watches_pending ON watches (due, id) WHERE state = 'pending';
    CREATE TABLE used_tokens (nonce TEXT PRIMARY KEY, used TIMESTAMPTZ NOT NULL);
    CREATE TABLE snoozes (
        firing BIGINT NOT NULL REFERENCES firings(id),
        at TIMESTAMPTZ NOT NULL,
        delay BIGINT NOT NULL,
        via TEXT NOT NULL
    );
    CREATE INDEX snoozes_firing ON snoozes (firing);
    CREATE TABLE pauses (
        id BIGSERIAL PRIMARY KEY,
        plan TEXT NOT NULL DEFAULT '',
        pause TEXT NOT NULL,
        until_at TIMESTAMPTZ NOT NULL,
        created TIMESTAMPTZ NOT NULL,
        ended TIMESTAMPTZ
    );",
    ),
    (
        "a leader for maintenance",
        "CREATE TABLE leader (
        name TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        elected_at TIMESTAMPTZ NOT NULL,
        expires TIMESTAMPTZ NOT NULL
    );",
    ),
    (
        "many plans: claims and steps looked up per plan",
        "DROP INDEX deliveries_pending;
    CREATE INDEX deliveries_pending ON deliveries (plan, channel, due, id) WHERE state = 'pending';
    ALTER TABLE watches ADD COLUMN plan TEXT NOT NULL DEFAULT '';
    UPDATE watches w SET plan = f.plan FROM firings f WHERE f.id = w.firing AND f.plan <> '';
    DROP INDEX watches_pending;
    CREATE INDEX watches_pending ON watches (plan, due, id) WHERE state = 'pending';",
    ),
    (
        "answers the person asked their contacts to hear about",
        "ALTER TABLE firings ADD COLUMN alert_on TEXT;
    ALTER TABLE answers ADD COLUMN heard BOOLEAN NOT NULL DEFAULT false;",
    ),
    (
        "deletions the person asked for",
        "CREATE TABLE deletions (plan TEXT NOT NULL DEFAULT '', at TIMESTAMPTZ NOT NULL, before TIMESTAMPTZ);
    CREATE INDEX answers_plan ON answers (plan, scheduled);",
    ),
    (
        "what contacts said about being messaged",
        "CREATE TABLE consents (plan TEXT NOT NULL DEFAULT '', contact TEXT NOT NULL, state TEXT NOT NULL, how TEXT NOT NULL, at TIMESTAMPTZ NOT NULL);
    CREATE INDEX consents_contact ON consents (plan, contact, at);",
    ),
    (
        "the consent a message to a contact relied on",
        "ALTER TABLE deliveries ADD COLUMN consent TEXT;",
    ),
    (
        "the person's passphrase hash for their pages",
        "CREATE TABLE access (plan TEXT PRIMARY KEY, hash TEXT NOT NULL, set_at TIMESTAMPTZ NOT NULL);",
    ),
];

/// The migrator: sqlx keeps the applied versions (with checksums) in `_sqlx_migrations`
/// and holds `pg_advisory_lock` while it migrates.
pub(super) fn migrator() -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .enumerate()
        .map(|(i, (description, sql))| {
            Migration::new(
                i as i64 + 1,
                Cow::Borrowed(*description),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }
}

/// How many migrations this kithd knows.
pub(super) const VERSION: i64 = MIGRATIONS.len() as i64;
