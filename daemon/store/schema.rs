//! The SQLite schema and its migrations, applied in order on open. Must not hold queries
//! other than schema changes.

/// Each entry migrates from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 0 → 1
    "CREATE TABLE firings (
        id INTEGER PRIMARY KEY,
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT NOT NULL,
        scheduled INTEGER NOT NULL,
        recorded INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        UNIQUE (item, scheduled, purpose)
    );
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        firing INTEGER NOT NULL REFERENCES firings(id),
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        purpose TEXT NOT NULL,
        scheduled INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        channel TEXT NOT NULL,
        channel_index INTEGER NOT NULL,
        state TEXT NOT NULL,
        due INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        late INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        gateway_id TEXT,
        created INTEGER NOT NULL,
        updated INTEGER NOT NULL,
        sent_at INTEGER,
        claimed INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX deliveries_pending ON deliveries (state, due);
    CREATE INDEX deliveries_scheduled ON deliveries (scheduled);
    CREATE INDEX firings_item ON firings (item, scheduled);",
    // 1 → 2: answers, escalation steps, single-use answer links.
    "ALTER TABLE firings ADD COLUMN deadline INTEGER;
    CREATE TABLE answers (
        firing INTEGER PRIMARY KEY REFERENCES firings(id),
        item TEXT NOT NULL,
        kind TEXT NOT NULL,
        scheduled INTEGER NOT NULL,
        value TEXT NOT NULL,
        note TEXT,
        via TEXT NOT NULL,
        answered INTEGER NOT NULL,
        late INTEGER NOT NULL
    );
    CREATE TABLE watches (
        id INTEGER PRIMARY KEY,
        firing INTEGER NOT NULL REFERENCES firings(id),
        action TEXT NOT NULL,
        step INTEGER NOT NULL,
        recipient TEXT NOT NULL,
        due INTEGER NOT NULL,
        state TEXT NOT NULL,
        UNIQUE (firing, action, step)
    );
    CREATE INDEX watches_pending ON watches (state, due);
    CREATE TABLE used_tokens (nonce TEXT PRIMARY KEY, used INTEGER NOT NULL);",
    // 2 → 3: fencing tokens for claims.
    "ALTER TABLE deliveries ADD COLUMN claim INTEGER NOT NULL DEFAULT 0;",
    // 3 → 4: claims and the next due time per channel (a backlog on one channel is not
    // scanned to find another's), and the channels with pending deliveries by a skip scan.
    "CREATE INDEX deliveries_channel_due ON deliveries (state, channel, due, id);",
    // 4 → 5: snoozes. A firing that may be snoozed records how long in all (seconds); each
    // snooze is a journal entry.
    "ALTER TABLE firings ADD COLUMN snooze_cap INTEGER;
    CREATE TABLE snoozes (
        firing INTEGER NOT NULL REFERENCES firings(id),
        at INTEGER NOT NULL,
        delay INTEGER NOT NULL,
        via TEXT NOT NULL
    );
    CREATE INDEX snoozes_firing ON snoozes (firing);",
    // 5 → 6: pauses from `kithd pause` (the plan's [[away]] windows are in the plan).
    "CREATE TABLE pauses (
        id INTEGER PRIMARY KEY,
        pause TEXT NOT NULL,
        until_at INTEGER NOT NULL,
        created INTEGER NOT NULL,
        ended INTEGER
    );",
    // 6 → 7: deliveries sent again after a claim ended without an outcome.
    "ALTER TABLE deliveries ADD COLUMN uncertain INTEGER NOT NULL DEFAULT 0;",
    // 7 → 8: answers the person asked their contacts to hear about (`alert_on`, kept on
    // the firing as `vocab::AlertOn::key`), and which answers were such.
    "ALTER TABLE firings ADD COLUMN alert_on TEXT;
    ALTER TABLE answers ADD COLUMN heard INTEGER NOT NULL DEFAULT 0;",
    // 8 → 9: `kithd forget` records only that a deletion happened.
    "CREATE TABLE deletions (at INTEGER NOT NULL, before INTEGER);",
    // 9 → 10: what contacts said about being messaged (`withdrawn` after a STOP).
    "CREATE TABLE consents (contact TEXT NOT NULL, state TEXT NOT NULL, how TEXT NOT NULL, at INTEGER NOT NULL);
    CREATE INDEX consents_contact ON consents (contact, at);",
    // 10 → 11: the consent a message to a contact relied on, noted when it was sent.
    "ALTER TABLE deliveries ADD COLUMN consent TEXT;",
    // 11 → 12: the Argon2id hash of the person's passphrase for their pages (one row).
    "CREATE TABLE access (id INTEGER PRIMARY KEY CHECK (id = 1), hash TEXT NOT NULL, set_at INTEGER NOT NULL);",
    // 12 → 13: one index on pending deliveries, holding only them: each claim and `sent`
    // mark wrote two, each holding the whole history. Dead letters (counted by health) get
    // their own small one.
    "DROP INDEX deliveries_pending;
    DROP INDEX deliveries_channel_due;
    CREATE INDEX deliveries_channel_due ON deliveries (channel, due, id) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (updated) WHERE state = 'dead';",
    // 13 → 14: pending deliveries due at the same time are claimed in the order they were
    // recorded (the index's implicit rowid), not by id: a claim and its `sent` marks then
    // rewrite a few neighbouring pages instead of one page per delivery.
    "DROP INDEX deliveries_channel_due;
    CREATE INDEX deliveries_channel_due ON deliveries (channel, due) WHERE state = 'pending';",
];

pub(crate) const VERSION: i64 = MIGRATIONS.len() as i64;
