//! One ledger conformance suite, run against SQLite and against a real PostgreSQL cluster
//! started for the test process (`scripts/pg-cluster.sh`, one fresh database per test):
//! claims and fencing, leases taken over, channels with no room, idempotent records,
//! retries, fallback and dead letters, steps, answers and all-clears, snoozes, pauses,
//! single-use nonces and reports. Times are real (PostgreSQL leases run on its own clock).

use std::sync::OnceLock;

use chrono::{DateTime, Duration, DurationRound, Utc};

use super::*;
use crate::vocab::{Pause, Purpose};

/// A PostgreSQL URL for a new, empty database in this process's private cluster.
pub(crate) fn pg_url() -> String {
    static DIR: OnceLock<String> = OnceLock::new();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/pg-cluster.sh");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(script)
            .args(args)
            .output()
            .expect("scripts/pg-cluster.sh runs");
        assert!(
            out.status.success(),
            "pg-cluster.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let dir = DIR.get_or_init(|| {
        let dir = format!("/tmp/kithd-pg-unit-{}", std::process::id());
        run(&["start", &dir, &std::process::id().to_string()]);
        dir
    });
    let name = format!(
        "t{}",
        NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    run(&["createdb", dir, &name])
}

pub(super) fn now() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap()
}

pub(super) fn firing(item: &str, kind: Kind, at: DateTime<Utc>) -> NewFiring {
    NewFiring::new(item, kind, Purpose::Main.ledger_key(), at)
}

pub(super) fn delivery(id: &str, channel: &str, idx: u32, due: DateTime<Utc>) -> NewDelivery {
    NewDelivery {
        id: id.into(),
        recipient: "self".into(),
        channel: channel.into(),
        channel_index: idx,
        due,
        late: false,
    }
}

pub(super) fn all(_: &str) -> usize {
    usize::MAX
}

fn a_lease_taken_over_fences_out_its_old_owner(l: &dyn Ledger) {
    let t0 = now() - Duration::seconds(1);
    l.record_firings(&[(
        firing("meds", Kind::Medication, t0),
        vec![delivery("d1", "sms", 0, t0)],
    )])
    .unwrap();
    let lease = Duration::milliseconds(1500);
    let old = l
        .claim_due(Utc::now(), Utc::now() + lease, &mut all)
        .unwrap()
        .remove(0);
    assert!(
        l.renew(&[old.fence()], Utc::now(), Utc::now() + lease)
            .unwrap()
            .is_empty()
    );
    assert!(
        l.claim_due(Utc::now(), Utc::now() + lease, &mut all)
            .unwrap()
            .is_empty(),
        "held: not handed out twice"
    );
    // The owner stalls past its lease: renewal fails and another claim takes it.
    std::thread::sleep(std::time::Duration::from_millis(1700));
    assert_eq!(
        l.renew(&[old.fence()], Utc::now(), Utc::now() + lease)
            .unwrap(),
        vec![old.fence()]
    );
    let new = l
        .claim_due(Utc::now(), Utc::now() + lease, &mut all)
        .unwrap()
        .remove(0);
    assert_eq!(new.claim, old.claim + 1, "each claim fences anew");
    assert!(
        !old.uncertain && new.uncertain,
        "the first attempt may have reached the gateway"
    );
    let later = Utc::now();
    assert!(!l.mark_sent(&old.fence(), Some("old"), later).unwrap());
    assert!(!l.mark_retry(&old.fence(), later, "x", false).unwrap());
    assert!(!l.fail_over(&old.fence(), "x", None).unwrap());
    assert!(!l.cancel(&old.fence(), "x").unwrap());
    assert_eq!(l.in_state(State::Pending, 10).unwrap().len(), 1, "not lost");
    assert!(l.mark_sent(&new.fence(), Some("new"), later).unwrap());
    let sent = l.in_state(State::Sent, 10).unwrap();
    assert_eq!(
        (sent.len(), sent[0].gateway_id.as_deref(), sent[0].attempts),
        (1, Some("new"), 1)
    );
}

fn a_full_channel_is_not_claimed_and_does_not_hide_others(l: &dyn Ledger) {
    let t0 = now() - Duration::seconds(2);
    let mut deliveries: Vec<NewDelivery> = (0..1200)
        .map(|i| delivery(&format!("slow{i:04}"), "slow", 0, t0))
        .collect();
    deliveries.push(delivery("fast", "fast", 0, t0 + Duration::seconds(1)));
    l.record_firings(&[(firing("meds", Kind::Medication, t0), deliveries)])
        .unwrap();
    let claimed = l
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(5), &mut |c| {
            if c == "fast" { usize::MAX } else { 1 }
        })
        .unwrap();
    let mut ids: Vec<&str> = claimed.iter().map(|d| d.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["fast", "slow0000"]);
    assert_eq!(l.in_state(State::Pending, 2000).unwrap().len(), 1201);
    assert_eq!(
        l.next_due(&["fast".into()]).unwrap(),
        Some(t0),
        "the oldest slow one"
    );
}

fn records_idempotently_and_walks_the_states(l: &dyn Ledger) {
    let t0 = now() - Duration::seconds(60);
    let batch = vec![(
        firing("meds", Kind::Medication, t0),
        vec![delivery("d1", "sms", 0, t0)],
    )];
    assert_eq!(l.record_firings(&batch).unwrap(), vec!["d1".to_string()]);
    assert!(
        l.record_firings(&batch).unwrap().is_empty(),
        "recorded twice, stored once"
    );
    let lease = || Utc::now() + Duration::minutes(5);
    let first = l.claim_due(Utc::now(), lease(), &mut all).unwrap();
    assert_eq!(first.len(), 1);
    assert!(
        l.claim_due(Utc::now(), lease(), &mut all)
            .unwrap()
            .is_empty()
    );
    assert_eq!(l.release_claims(Utc::now()).unwrap(), 1);
    let again = l.claim_due(Utc::now(), lease(), &mut all).unwrap();
    assert_eq!(again.len(), 1, "released claims come back");
    assert_eq!(again[0].claim, first[0].claim + 1);
    assert!(
        again[0].uncertain,
        "in flight when released: it may have been sent"
    );
    assert!(!l.mark_sent(&first[0].fence(), None, Utc::now()).unwrap());
    let retry_at = now() + Duration::seconds(3600);
    assert!(
        l.mark_retry(&again[0].fence(), retry_at, "HTTP 500", false)
            .unwrap()
    );
    assert!(
        l.claim_due(Utc::now(), lease(), &mut all)
            .unwrap()
            .is_empty(),
        "not due yet"
    );
    assert_eq!(l.next_due(&[]).unwrap(), Some(retry_at));
    assert_eq!(l.next_due(&["sms".into()]).unwrap(), None);
    assert_eq!(l.in_state(State::Pending, 1).unwrap()[0].attempts, 1);
    // Another delivery, failed over to the next channel, then dead-lettered there.
    l.record_firings(&[(
        firing("meds", Kind::Medication, t0 + Duration::seconds(1)),
        vec![delivery("d3", "sms", 0, t0)],
    )])
    .unwrap();
    let d3 = l
        .claim_due(Utc::now(), lease(), &mut all)
        .unwrap()
        .remove(0);
    assert_eq!(d3.id, "d3");
    let next = delivery("d2", "mail", 1, t0);
    assert!(l.fail_over(&d3.fence(), "HTTP 400", Some(&next)).unwrap());
    let due = l.claim_due(Utc::now(), lease(), &mut all).unwrap();
    assert_eq!(
        (due.len(), due[0].id.as_str(), due[0].channel.as_str()),
        (1, "d2", "mail")
    );
    assert!(l.fail_over(&due[0].fence(), "HTTP 401", None).unwrap());
    let dead = l.in_state(State::Dead, 10).unwrap();
    assert_eq!((dead.len(), dead[0].attempts), (1, 1));
    assert_eq!(l.in_state(State::Failed, 10).unwrap()[0].attempts, 1);
    assert_eq!(l.last_errors().unwrap().len(), 2);
    let h = l.health(t0).unwrap();
    assert_eq!(
        (h.dead_letters, h.failing_channels),
        (1, vec!["mail".to_string(), "sms".to_string()])
    );
    let mut last: Vec<String> = l
        .last_scheduled()
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    last.dedup();
    assert_eq!(last, ["meds"]);
    let history = l.history(&HistoryFilter::default()).unwrap();
    assert_eq!(history.len(), 3);
    let only = HistoryFilter {
        item: Some("nothing".into()),
        ..Default::default()
    };
    assert!(l.history(&only).unwrap().is_empty());
    l.record_missed(&firing("meds", Kind::Medication, t0 - Duration::days(1)))
        .unwrap();
    let since = HistoryFilter {
        since: Some(t0 - Duration::days(2)),
        ..Default::default()
    };
    assert_eq!(l.missed(&since).unwrap().len(), 1);
}

fn answers_cancel_steps_and_queue_all_clears(l: &dyn Ledger) {
    let at = now() - Duration::hours(3);
    let mut f = firing("checkin", Kind::Checkin, at);
    f.deadline = Some(at + Duration::hours(1));
    f.snooze_cap = Some(Duration::hours(2));
    let watch = |action, step, who: &str, after| NewWatch {
        action,
        step,
        recipient: who.into(),
        due: at + after,
    };
    f.watches = vec![
        watch(StepAction::Nag, 1, "self", Duration::minutes(15)),
        watch(StepAction::Escalate, 0, "sam", Duration::hours(1)),
        watch(StepAction::Escalate, 1, "kim", Duration::hours(5)),
    ];
    l.record_firings(&[(f.clone(), vec![delivery("d1", "c", 0, at)])])
        .unwrap();
    l.record_firings(&[(f, vec![])]).unwrap(); // the steps are not doubled
    let due = l.due_watches(at + Duration::minutes(61), 10).unwrap();
    assert_eq!(due.len(), 2);
    assert_eq!(
        l.next_watch_due().unwrap(),
        Some(at + Duration::minutes(15))
    );
    let step = |who: &str, id: &str| {
        (
            NewFiring::new(
                "checkin",
                Kind::Checkin,
                Purpose::Escalate(0).ledger_key(),
                at,
            ),
            vec![NewDelivery {
                recipient: who.into(),
                ..delivery(id, "c", 0, at)
            }],
        )
    };
    assert!(l.run_watch(due[1].id, &step("sam", "e1")).unwrap());
    assert!(
        !l.run_watch(due[1].id, &step("sam", "e1")).unwrap(),
        "a step runs once"
    );
    l.cancel_watch(due[0].id).unwrap();
    for d in l
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(5), &mut all)
        .unwrap()
    {
        assert!(l.mark_sent(&d.fence(), None, Utc::now()).unwrap());
    }
    let open = l
        .open_firing(Some("checkin"), &[Kind::Checkin], Utc::now())
        .unwrap()
        .unwrap();
    assert_eq!(
        l.find_firing("checkin", at).unwrap().map(|f| f.answered),
        Some(false)
    );
    // Snoozed up to its cap (two hours in all), then no more.
    assert!(matches!(
        l.snooze(&open, Duration::minutes(90), "sms", Utc::now())
            .unwrap(),
        SnoozeResult::Snoozed { .. }
    ));
    match l
        .snooze(&open, Duration::minutes(90), "sms", Utc::now())
        .unwrap()
    {
        SnoozeResult::Snoozed { delay, left, .. } => {
            assert_eq!((delay, left), (Duration::minutes(30), Duration::zero()))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        l.snooze(&open, Duration::minutes(5), "sms", Utc::now())
            .unwrap(),
        SnoozeResult::CapReached
    );
    let r = l
        .answer(&open, "3", Some("a note"), "cli", Utc::now())
        .unwrap();
    assert_eq!(
        r,
        AnswerResult::Recorded {
            late: true,
            all_clear_to: vec!["sam".into()],
            heard: false,
        }
    );
    assert_eq!(
        l.answer(&open, "4", None, "cli", Utc::now()).unwrap(),
        AnswerResult::Already
    );
    assert!(
        l.due_watches(at + Duration::hours(9), 10)
            .unwrap()
            .is_empty(),
        "kim's step cancelled"
    );
    let mut pending: Vec<String> = l
        .in_state(State::Pending, 10)
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    pending.sort();
    let mut want = vec![
        crate::vocab::all_clear_id(None, "checkin", at, "sam", "c"),
        crate::vocab::delivery_id(None, "checkin", at, Purpose::Snooze(1), "self", "c"),
        crate::vocab::delivery_id(None, "checkin", at, Purpose::Snooze(2), "self", "c"),
    ];
    want.sort();
    assert_eq!(pending, want);
    assert!(l.use_token("n1", at).unwrap() && !l.use_token("n1", at).unwrap());
    l.release_token("n1").unwrap();
    assert!(l.use_token("n1", at).unwrap(), "released, so usable again");
    let j = l.journal(at - Duration::days(1)).unwrap();
    assert_eq!(
        (
            j.len(),
            j[0].value.as_deref(),
            j[0].late,
            j[0].note.as_deref(),
            j[0].snoozes
        ),
        (1, Some("3"), true, Some("a note"), 2)
    );
    assert_eq!(l.escalation_counts(at - Duration::days(1)).unwrap(), (1, 0));
}

fn pauses_are_stored_and_ended(l: &dyn Ledger) {
    let t = now();
    let pause: Pause = serde_json::from_value(serde_json::json!({
        "from": (t - Duration::hours(1)).to_rfc3339(),
        "until": (t + Duration::hours(1)).to_rfc3339(),
        "items": ["meds"], "kinds": [], "note": "test"
    }))
    .unwrap();
    l.add_pause(&pause, t).unwrap();
    assert_eq!(l.pauses(t).unwrap(), vec![pause.clone()]);
    assert!(l.pauses(t + Duration::hours(2)).unwrap().is_empty());
    l.record_paused(&firing("meds", Kind::Medication, t))
        .unwrap();
    assert_eq!(
        l.missed(&HistoryFilter::default()).unwrap()[0].outcome,
        "paused"
    );
    assert_eq!(l.end_pauses(t).unwrap(), 1);
    assert!(l.pauses(t).unwrap().is_empty());
}

/// An answer the person asked to be heard (`alert_on`): nudges stop, the escalation goes
/// ahead at once (steps keep their spacing) as such, and no all-clear; any other answer
/// cancels as before.
fn a_heard_answer_escalates_at_once(l: &dyn Ledger) {
    let at = now() - Duration::minutes(5);
    let record = |item: &str| {
        let mut f = firing(item, Kind::Checkin, at);
        f.deadline = Some(at + Duration::hours(1));
        f.alert_on = Some(crate::vocab::AlertOn::MoodAtMost(2));
        let watch = |action, step, due| NewWatch {
            action,
            step,
            recipient: if action == StepAction::Nag {
                "self"
            } else {
                "sam"
            }
            .into(),
            due: at + due,
        };
        f.watches = vec![
            watch(StepAction::Nag, 1, Duration::minutes(30)),
            watch(StepAction::Escalate, 0, Duration::hours(1)),
            watch(StepAction::Escalate, 1, Duration::hours(2)),
        ];
        l.record_firings(&[(f, vec![delivery(&format!("d-{item}"), "c", 0, at)])])
            .unwrap();
        l.find_firing(item, at).unwrap().unwrap()
    };
    let (low, good) = (record("low"), record("good"));
    let t = Utc::now();
    assert!(matches!(
        l.answer(&good, "4", None, "link", t).unwrap(),
        AnswerResult::Recorded { heard: false, .. }
    ));
    assert!(matches!(
        l.answer(&low, "1", None, "link", t).unwrap(),
        AnswerResult::Recorded { heard: true, ref all_clear_to, .. } if all_clear_to.is_empty()
    ));
    // Only the low answer's escalation is left: its first step now, the next an hour on.
    let due = l.due_watches(t + Duration::seconds(1), 10).unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert!(due[0].heard && due[0].action == StepAction::Escalate && due[0].step == 0);
    assert_eq!(due[0].item, "low");
    let next = l.due_watches(t + Duration::minutes(61), 10).unwrap();
    assert_eq!(next.len(), 2, "the second step keeps its spacing: {next:?}");
    let step = (
        NewFiring::new("low", Kind::Checkin, Purpose::Heard(0).ledger_key(), at),
        vec![NewDelivery {
            recipient: "sam".into(),
            ..delivery("h0", "c", 0, t)
        }],
    );
    assert!(
        l.run_watch(due[0].id, &step).unwrap(),
        "the step goes ahead"
    );
}

/// Old finished history is pruned, pending firings are kept until the person erases
/// them, and an erasure leaves only the fact that it happened.
fn history_is_pruned_and_forgotten(l: &dyn Ledger) {
    let t = now();
    let old = t - Duration::days(30);
    let record = |item: &str, at: DateTime<Utc>, due: DateTime<Utc>| {
        let mut f = firing(item, Kind::Checkin, at);
        f.deadline = Some(at + Duration::hours(1));
        l.record_firings(&[(f, vec![delivery(&format!("d-{item}"), "c", 0, due)])])
            .unwrap();
    };
    record("a", old, old);
    record("b", old, t + Duration::days(1));
    record("c", t - Duration::hours(1), t - Duration::hours(1));
    for d in l.claim_due(t, t + Duration::minutes(5), &mut all).unwrap() {
        assert!(l.mark_sent(&d.fence(), None, t).unwrap());
    }
    let a = l.find_firing("a", old).unwrap().unwrap();
    l.answer(&a, "2", Some("an old note"), "cli", t).unwrap();
    let ids = || -> Vec<String> {
        l.history(&HistoryFilter::default())
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect()
    };
    // Only the old, finished firing goes; the pending one waits, the recent one stays.
    assert_eq!(l.prune(t - Duration::days(7)).unwrap(), 1);
    assert_eq!(ids(), ["d-b", "d-c"]);
    assert!(
        l.journal(old - Duration::days(1))
            .unwrap()
            .iter()
            .all(|j| j.item != "a")
    );
    assert_eq!(l.forget(Some(t - Duration::days(7)), t).unwrap(), 1);
    assert_eq!(ids(), ["d-c"]);
    assert_eq!(l.forget(None, t).unwrap(), 1);
    assert!(ids().is_empty());
    let deletions = l.deletions().unwrap();
    assert_eq!(deletions.len(), 2);
    assert_eq!(deletions[0].1, Some(t - Duration::days(7)));
    assert_eq!(deletions[1].1, None);
}

/// A contact's STOP: recorded, their pending alerts and steps cancelled, others' kept.
fn a_contacts_stop_cancels_what_waits_for_them(l: &dyn Ledger) {
    let t = now();
    let mut f = firing("mood", Kind::Checkin, t);
    f.watches = ["sam", "kim"]
        .iter()
        .enumerate()
        .map(|(i, who)| NewWatch {
            action: StepAction::Escalate,
            step: i as u32,
            recipient: who.to_string(),
            due: t + Duration::hours(1),
        })
        .collect();
    let to = |who: &str| NewDelivery {
        recipient: who.into(),
        ..delivery(&format!("d-{who}"), "c", 0, t + Duration::hours(1))
    };
    l.record_firings(&[(f, vec![to("sam"), to("kim")])])
        .unwrap();
    l.record_consent("sam", "invited", "cli", t - Duration::days(1))
        .unwrap();
    l.record_consent("sam", "given", "sms", t - Duration::hours(1))
        .unwrap();
    assert_eq!(l.consents().unwrap()[0].state, "given");
    assert_eq!(l.withdraw("sam", "sms", t).unwrap(), (1, 1));
    let said = l.consents().unwrap();
    assert_eq!(said.len(), 1, "the latest word per contact: {said:?}");
    assert_eq!(
        (said[0].contact.as_str(), said[0].state.as_str(), said[0].at),
        ("sam", "withdrawn", t)
    );
    let states: Vec<(String, State)> = l
        .history(&HistoryFilter::default())
        .unwrap()
        .into_iter()
        .map(|d| (d.recipient, d.state))
        .collect();
    assert!(
        states.contains(&("sam".into(), State::Cancelled)),
        "{states:?}"
    );
    assert!(
        states.contains(&("kim".into(), State::Pending)),
        "{states:?}"
    );
    let steps = l.due_watches(t + Duration::hours(2), 10).unwrap();
    assert_eq!(
        steps
            .iter()
            .map(|w| w.recipient.as_str())
            .collect::<Vec<_>>(),
        ["kim"]
    );
}

fn the_passphrase_hash_is_kept_replaced_and_removed(l: &dyn Ledger) {
    let t0: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
    assert_eq!(l.passphrase().unwrap(), None);
    l.set_passphrase(Some("$argon2id$v=19$first"), t0).unwrap();
    assert_eq!(
        l.passphrase().unwrap(),
        Some(("$argon2id$v=19$first".to_string(), t0))
    );
    let t1 = t0 + chrono::Duration::hours(1);
    l.set_passphrase(Some("$argon2id$v=19$second"), t1).unwrap();
    assert_eq!(
        l.passphrase().unwrap(),
        Some(("$argon2id$v=19$second".to_string(), t1))
    );
    l.set_passphrase(None, t1).unwrap();
    assert_eq!(l.passphrase().unwrap(), None);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $case() {
                let dir = tempfile::tempdir().unwrap();
                let l = crate::store::SqliteLedger::open(dir.path()).unwrap();
                super::$case(&l);
            })*
        }
        mod postgres {
            $(#[test]
            fn $case() {
                let l = crate::store::PgLedger::open(&super::pg_url()).unwrap();
                super::$case(&l);
            })*
        }
    };
}

conformance!(
    a_lease_taken_over_fences_out_its_old_owner,
    a_full_channel_is_not_claimed_and_does_not_hide_others,
    records_idempotently_and_walks_the_states,
    answers_cancel_steps_and_queue_all_clears,
    pauses_are_stored_and_ended,
    a_heard_answer_escalates_at_once,
    history_is_pruned_and_forgotten,
    a_contacts_stop_cancels_what_waits_for_them,
    the_passphrase_hash_is_kept_replaced_and_removed,
);
