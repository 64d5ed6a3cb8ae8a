//! What only the SQLite ledger does: its file's mode, the daemon's lock, read-only
//! readers, damage. The behaviour it shares with PostgreSQL is in `store::conformance`.
use super::*;
use crate::vocab::Purpose;

#[test]
fn one_private_file_one_daemon_and_readers_alongside() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join(DB_FILE))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let at: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
    let firing = NewFiring::new("meds", Kind::Medication, Purpose::Main.ledger_key(), at);
    let delivery = NewDelivery {
        id: "d1".into(),
        recipient: "self".into(),
        channel: "sms".into(),
        channel_index: 0,
        due: at,
        late: false,
    };
    l.record_firings(&[(firing, vec![delivery])]).unwrap();
    // A second daemon on the same directory is refused; readers are fine.
    assert!(matches!(
        SqliteLedger::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
    let r = SqliteLedger::open_read_only(dir.path()).unwrap();
    assert_eq!(r.history(&HistoryFilter::default()).unwrap().len(), 1);
    let c = SqliteLedger::open_client(dir.path()).unwrap();
    assert!(c.use_token("n", at).unwrap());
    // The plan leaves its directory: what it had pending is cancelled, with the reason.
    assert_eq!(l.retire("its plan was removed").unwrap(), (1, 0));
    let d = &r.history(&HistoryFilter::default()).unwrap()[0];
    assert_eq!(d.state, State::Cancelled);
    assert_eq!(d.last_error.as_deref(), Some("its plan was removed"));
}

#[test]
fn a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
    let e = SqliteLedger::open(dir.path()).err().unwrap();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("is damaged"), "{e}");
}

#[test]
fn the_delivery_column_count_matches_the_columns() {
    assert_eq!(
        super::DELIVERY_COLUMNS.split(", ").count(),
        super::DELIVERY_COLUMN_COUNT
    );
}
