//! The SQLite ledger's own tests: fences, claims per channel, idempotent records, answers.
use super::*;
use crate::store::StepAction;
use crate::vocab::Purpose;

fn firing(at: &str) -> NewFiring {
    NewFiring::new(
        "meds",
        Kind::Medication,
        Purpose::Main.ledger_key(),
        at.parse().unwrap(),
    )
}

fn delivery(id: &str, channel: &str, idx: u32, due: &str) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        recipient: "self".into(),
        channel: channel.into(),
        channel_index: idx,
        due: due.parse().unwrap(),
        late: false,
    }
}

#[test]
fn a_lease_taken_over_fences_out_its_old_owner() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path()).unwrap();
    let t0: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
    let secs = |s| t0 + chrono::Duration::seconds(s);
    let batch = vec![(
        firing("2026-12-01T08:00:00Z"),
        vec![delivery("d1", "sms", 0, "2026-12-01T08:00:00Z")],
    )];
    l.record_firings(&batch).unwrap();
    let all = &mut |_: &str| usize::MAX;
    let old = l.claim_due(t0, secs(2), all).unwrap().remove(0);
    // Renewed while held: not claimable at t0+3 s.
    assert!(
        l.renew(&[old.fence()], secs(1), secs(4))
            .unwrap()
            .is_empty()
    );
    assert!(l.claim_due(secs(3), secs(5), all).unwrap().is_empty());
    // Not renewed in time (the owner stalled): the lease ends and is taken over.
    assert_eq!(
        l.renew(&[old.fence()], secs(5), secs(8)).unwrap(),
        vec![old.fence()]
    );
    let new = l.claim_due(secs(5), secs(7), all).unwrap().remove(0);
    assert!(!l.mark_sent(&old.fence(), Some("old"), secs(6)).unwrap());
    assert!(!l.mark_retry(&old.fence(), secs(9), "x").unwrap());
    assert!(!l.fail_over(&old.fence(), "x", None).unwrap());
    assert!(!l.cancel(&old.fence(), "x").unwrap());
    assert_eq!(l.in_state(State::Pending, 10).unwrap().len(), 1, "not lost");
    assert!(l.mark_sent(&new.fence(), Some("new"), secs(6)).unwrap());
    let sent = l.in_state(State::Sent, 10).unwrap();
    assert_eq!(
        (sent.len(), sent[0].gateway_id.as_deref(), sent[0].attempts),
        (1, Some("new"), 1)
    );
}

#[test]
fn a_full_channel_is_not_claimed_and_does_not_hide_others() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path()).unwrap();
    let mut deliveries: Vec<NewDelivery> = (0..1200)
        .map(|i| delivery(&format!("slow{i:04}"), "slow", 0, "2026-12-01T08:00:00Z"))
        .collect();
    deliveries.push(delivery("fast", "fast", 0, "2026-12-01T08:00:01Z"));
    l.record_firings(&[(firing("2026-12-01T08:00:00Z"), deliveries)])
        .unwrap();
    let now: DateTime<Utc> = "2026-12-01T08:00:02Z".parse().unwrap();
    let lease = now + chrono::Duration::minutes(5);
    let slots = 1;
    let claimed = l
        .claim_due(now, lease, &mut |c| {
            if c == "fast" { usize::MAX } else { slots }
        })
        .unwrap();
    let mut ids: Vec<&str> = claimed.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["fast", "slow0000"]);
    assert_eq!(l.in_state(State::Pending, 2000).unwrap().len(), 1201);
}

#[test]
fn records_idempotently_and_walks_the_states() {
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path()).unwrap();
    let mode = std::fs::metadata(dir.path().join(DB_FILE))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let f = firing("2026-12-01T08:00:00Z");
    let d = delivery("d1", "sms", 0, "2026-12-01T08:00:00Z");
    let batch = vec![(f.clone(), vec![d.clone()])];
    assert_eq!(l.record_firings(&batch).unwrap(), vec!["d1".to_string()]);
    assert!(
        l.record_firings(&batch).unwrap().is_empty(),
        "recorded twice, stored once"
    );
    let now: DateTime<Utc> = "2026-12-01T08:00:01Z".parse().unwrap();
    let lease: DateTime<Utc> = "2026-12-01T08:05:00Z".parse().unwrap();
    let all = &mut |_: &str| usize::MAX;
    let first = l.claim_due(now, lease, all).unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        l.claim_due(now, lease, all).unwrap().is_empty(),
        "a claimed delivery is not handed out twice"
    );
    assert_eq!(l.release_claims(now).unwrap(), 1);
    let again = l.claim_due(now, lease, all).unwrap();
    assert_eq!(again.len(), 1, "a crash's claims come back");
    assert_eq!(again[0].claim, first[0].claim + 1, "each claim fences anew");
    assert!(
        !l.mark_sent(&first[0].fence(), None, now).unwrap(),
        "the crashed run's claim can't complete it"
    );
    assert!(
        l.mark_retry(
            &again[0].fence(),
            "2026-12-01T08:01:00Z".parse().unwrap(),
            "HTTP 500"
        )
        .unwrap()
    );
    assert!(l.claim_due(now, lease, all).unwrap().is_empty());
    assert_eq!(
        l.next_due(&[]).unwrap().unwrap().to_rfc3339(),
        "2026-12-01T08:01:00+00:00"
    );
    assert_eq!(l.next_due(&["sms".into()]).unwrap(), None);
    let later: DateTime<Utc> = "2026-12-01T08:01:30Z".parse().unwrap();
    let retried = l.claim_due(later, lease, all).unwrap();
    let next = delivery("d2", "mail", 1, "2026-12-01T08:01:00Z");
    assert!(
        l.fail_over(&retried[0].fence(), "HTTP 400", Some(&next))
            .unwrap()
    );
    let due = l
        .claim_due("2026-12-01T08:02:00Z".parse().unwrap(), lease, all)
        .unwrap();
    assert_eq!(
        (due.len(), due[0].id.as_str(), due[0].channel.as_str()),
        (1, "d2", "mail")
    );
    assert!(l.fail_over(&due[0].fence(), "HTTP 401", None).unwrap());
    let dead = l.in_state(State::Dead, 10).unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 1));
    assert_eq!(l.in_state(State::Failed, 10).unwrap()[0].attempts, 2);
    assert_eq!(l.last_errors().unwrap().len(), 2);
    assert_eq!(l.last_scheduled().unwrap()[0].0, "meds");
    // A second daemon on the same directory is refused; readers are fine.
    assert!(matches!(
        SqliteLedger::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
    let r = SqliteLedger::open_read_only(dir.path()).unwrap();
    assert_eq!(r.history(&HistoryFilter::default()).unwrap().len(), 2);
}

#[test]
fn answers_cancel_steps_and_queue_all_clears() {
    use crate::store::NewWatch;
    let dir = tempfile::tempdir().unwrap();
    let l = SqliteLedger::open(dir.path()).unwrap();
    let at: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
    let mut f = NewFiring::new("checkin", Kind::Checkin, Purpose::Main.ledger_key(), at);
    f.deadline = Some(at + chrono::Duration::hours(1));
    f.watches = vec![
        NewWatch {
            action: StepAction::Nag,
            step: 1,
            recipient: "self".into(),
            due: at + chrono::Duration::minutes(15),
        },
        NewWatch {
            action: StepAction::Escalate,
            step: 0,
            recipient: "sam".into(),
            due: at + chrono::Duration::hours(1),
        },
        NewWatch {
            action: StepAction::Escalate,
            step: 1,
            recipient: "kim".into(),
            due: at + chrono::Duration::hours(2),
        },
    ];
    l.record_firings(&[(
        f.clone(),
        vec![delivery("d1", "c", 0, "2026-12-01T08:00:00Z")],
    )])
    .unwrap();
    l.record_firings(&[(f, vec![])]).unwrap(); // recorded twice: the steps are not doubled
    let due = l
        .due_watches(at + chrono::Duration::minutes(61), 10)
        .unwrap();
    assert_eq!(due.len(), 2);
    // As production records them: `escalate:STEP` (see `Purpose::ledger_key`).
    let step = |who: &str, id: &str| {
        let j = if who == "sam" { 0 } else { 1 };
        (
            NewFiring::new(
                "checkin",
                Kind::Checkin,
                Purpose::Escalate(j).ledger_key(),
                at,
            ),
            vec![NewDelivery {
                id: id.into(),
                recipient: who.into(),
                channel: "c".into(),
                channel_index: 0,
                due: at,
                late: false,
            }],
        )
    };
    assert!(l.run_watch(due[1].id, &step("sam", "e1")).unwrap());
    assert!(
        !l.run_watch(due[1].id, &step("sam", "e1")).unwrap(),
        "a step runs once"
    );
    let lease = at + chrono::Duration::hours(9);
    for d in l
        .claim_due(at + chrono::Duration::hours(3), lease, &mut |_| usize::MAX)
        .unwrap()
    {
        assert!(l.mark_sent(&d.fence(), None, at).unwrap());
    }
    let open = l
        .open_firing(
            Some("checkin"),
            &[Kind::Checkin],
            at + chrono::Duration::hours(3),
        )
        .unwrap()
        .unwrap();
    let r = l
        .answer(&open, "3", None, "cli", at + chrono::Duration::hours(3))
        .unwrap();
    assert_eq!(
        r,
        AnswerResult::Recorded {
            late: true,
            all_clear_to: vec!["sam".into()]
        }
    );
    assert_eq!(
        l.answer(&open, "4", None, "cli", at).unwrap(),
        AnswerResult::Already
    );
    assert!(
        l.due_watches(at + chrono::Duration::hours(9), 10)
            .unwrap()
            .is_empty(),
        "kim's step was cancelled"
    );
    let pending = l.in_state(State::Pending, 10).unwrap();
    assert_eq!(
        pending.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        vec![crate::vocab::all_clear_id("checkin", at, "sam", "c")]
    );
    assert!(l.use_token("n1", at).unwrap() && !l.use_token("n1", at).unwrap());
    let j = l.journal(at - chrono::Duration::days(1)).unwrap();
    assert_eq!(
        (j.len(), j[0].value.as_deref(), j[0].late),
        (1, Some("3"), true)
    );
    assert_eq!(
        l.escalation_counts(at - chrono::Duration::days(1)).unwrap(),
        (1, 0)
    );
}

#[test]
fn a_corrupt_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), vec![0x42u8; 8192]).unwrap();
    let e = SqliteLedger::open(dir.path()).err().unwrap();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
    assert!(e.to_string().contains("is damaged"), "{e}");
}
