//! Several instances on one PostgreSQL ledger (a private cluster, as in
//! `store::conformance`): claims at once never overlap, owners are fenced, an answer and
//! the alert it races never both win, and one maintenance leader at a time.

use super::conformance::*;
use super::*;
use crate::store::PgLedger;
use crate::vocab::Purpose;
use chrono::Duration;

#[test]
fn instances_claiming_at_once_never_share_a_delivery() {
    let url = pg_url();
    let a = PgLedger::open(&url).unwrap();
    let t0 = now() - Duration::seconds(1);
    let deliveries: Vec<NewDelivery> = (0..600)
        .map(|i| delivery(&format!("d{i:03}"), ["sms", "mail", "push"][i % 3], 0, t0))
        .collect();
    a.record_firings(&[(firing("meds", Kind::Medication, t0), deliveries)])
        .unwrap();
    let ledgers: Vec<PgLedger> = (0..3).map(|_| PgLedger::open(&url).unwrap()).collect();
    let claimed: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = ledgers
            .iter()
            .map(|l| {
                s.spawn(move || {
                    let mut mine = Vec::new();
                    // Small bites, so the instances interleave.
                    loop {
                        let got = l
                            .claim_due(Utc::now(), Utc::now() + Duration::minutes(1), &mut |_| 7)
                            .unwrap();
                        if got.is_empty() {
                            break;
                        }
                        for d in got {
                            assert!(l.mark_sent(&d.fence(), None, Utc::now()).unwrap());
                            mine.push(d.id);
                        }
                    }
                    mine
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut every: Vec<String> = claimed.concat();
    let n = every.len();
    every.sort();
    every.dedup();
    assert_eq!(
        (n, every.len()),
        (600, 600),
        "each delivery claimed exactly once"
    );
    assert!(
        claimed.iter().all(|c| !c.is_empty()),
        "all three took part: {:?}",
        claimed.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(a.in_state(State::Sent, 1000).unwrap().len(), 600);
}

#[test]
fn another_instance_cannot_complete_a_claim_it_does_not_own() {
    let url = pg_url();
    let (a, b) = (PgLedger::open(&url).unwrap(), PgLedger::open(&url).unwrap());
    let t0 = now() - Duration::seconds(1);
    a.record_firings(&[(
        firing("meds", Kind::Medication, t0),
        vec![delivery("d1", "sms", 0, t0)],
    )])
    .unwrap();
    let d = a
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(1), &mut all)
        .unwrap()
        .remove(0);
    assert!(
        !b.mark_sent(&d.fence(), None, Utc::now()).unwrap(),
        "same id and token, other owner"
    );
    assert!(!b.cancel(&d.fence(), "x").unwrap());
    assert_eq!(
        b.renew(&[d.fence()], Utc::now(), Utc::now() + Duration::minutes(1))
            .unwrap(),
        vec![d.fence()]
    );
    assert_eq!(
        b.release_claims(Utc::now()).unwrap(),
        0,
        "only its own claims"
    );
    assert!(a.mark_sent(&d.fence(), None, Utc::now()).unwrap());
}

#[test]
fn an_answer_and_the_alert_it_races_never_both_win() {
    let url = pg_url();
    let (a, b) = (PgLedger::open(&url).unwrap(), PgLedger::open(&url).unwrap());
    for round in 0..20 {
        let at = now() - Duration::hours(2) + Duration::seconds(round);
        let mut f = firing("checkin", Kind::Checkin, at);
        f.watches = vec![NewWatch {
            action: StepAction::Escalate,
            step: 0,
            recipient: "sam".into(),
            due: at,
        }];
        a.record_firings(&[(f, vec![delivery(&format!("m{round}"), "c", 0, at)])])
            .unwrap();
        let watch = a
            .due_watches(Utc::now(), 100)
            .unwrap()
            .into_iter()
            .find(|w| w.scheduled == at)
            .unwrap();
        let open = a.find_firing("checkin", at).unwrap().unwrap();
        let alert = format!("alert{round}");
        let step = (
            NewFiring::new(
                "checkin",
                Kind::Checkin,
                Purpose::Escalate(0).ledger_key(),
                at,
            ),
            vec![NewDelivery {
                recipient: "sam".into(),
                ..delivery(&alert, "c", 0, at)
            }],
        );
        let barrier = std::sync::Barrier::new(2);
        let (stepped, answered) = std::thread::scope(|s| {
            let t1 = s.spawn(|| {
                barrier.wait();
                a.run_watch(watch.id, &step).unwrap()
            });
            let t2 = s.spawn(|| {
                barrier.wait();
                b.answer(&open, "ok", None, "sms", Utc::now()).unwrap()
            });
            (t1.join().unwrap(), t2.join().unwrap())
        });
        assert!(matches!(answered, AnswerResult::Recorded { .. }));
        let pending_alert = a
            .in_state(State::Pending, 1000)
            .unwrap()
            .into_iter()
            .any(|d| d.id == alert);
        assert!(
            !pending_alert,
            "round {round}: the step ran ({stepped}) and its alert is still to be sent after the answer"
        );
    }
}

#[test]
fn one_leader_at_a_time_and_a_lapsed_one_changes_nothing() {
    let url = pg_url();
    let (a, b) = (PgLedger::open(&url).unwrap(), PgLedger::open(&url).unwrap());
    let ttl = Duration::milliseconds(1500);
    let first = a.elect(ttl).unwrap().expect("the first to stand leads");
    assert_eq!(b.elect(ttl).unwrap(), None, "one leader at a time");
    assert_eq!(
        a.elect(ttl).unwrap(),
        Some(first.clone()),
        "re-elected: the same term"
    );
    // A claim whose instance stopped, and an old nonce.
    let t0 = now() - Duration::seconds(5);
    a.record_firings(&[(
        firing("meds", Kind::Medication, t0),
        vec![delivery("d1", "sms", 0, t0)],
    )])
    .unwrap();
    let d = a
        .claim_due(
            Utc::now(),
            Utc::now() + Duration::milliseconds(200),
            &mut all,
        )
        .unwrap()
        .remove(0);
    a.use_token("old", Utc::now() - Duration::days(500))
        .unwrap();
    a.use_token("new", Utc::now()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1700));
    // The leader lapsed; the other instance takes over with a new term, and the old
    // term's maintenance does nothing.
    let second = b
        .elect(ttl)
        .unwrap()
        .expect("a lapsed leadership can be taken");
    assert!(second.elected_at > first.elected_at);
    assert_eq!(a.maintain(&first).unwrap(), Maintenance::default());
    let done = b.maintain(&second).unwrap();
    assert_eq!((done.rescued, done.pruned), (1, 1));
    let back = b
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(1), &mut all)
        .unwrap()
        .remove(0);
    assert!(back.uncertain && back.claim == d.claim + 1);
    assert!(
        !a.mark_sent(&d.fence(), None, Utc::now()).unwrap(),
        "the stopped claim is fenced out"
    );
    assert!(!b.use_token("new", Utc::now()).unwrap() && b.use_token("old", Utc::now()).unwrap());
}
