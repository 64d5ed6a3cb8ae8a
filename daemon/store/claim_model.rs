//! The claim protocol against a model, on a real PostgreSQL ledger: proptest generates
//! interleavings of two instances claiming (with a lease that holds, or one that has
//! already ended), completing under any fence they ever held (stale ones included), and
//! the leader's rescue; after each step the ledger must agree with the model. A claim
//! hands out exactly the deliveries that are pending and not held under a live lease, each
//! with the next fencing token; a completion succeeds only under the latest claim's token
//! and owner; nothing is sent twice; and in the end everything is sent.

use std::collections::HashMap;

use chrono::{Duration, Utc};
use proptest::prelude::*;

use super::conformance::pg_url;
use super::*;
use crate::vocab::Purpose;

#[derive(Debug, Clone)]
enum Op {
    /// Instance `0` or `1` claims; `live` leases hold for a minute, others have ended.
    Claim { who: usize, live: bool },
    /// Instance `who` completes its `pick`-th fence ever held (modulo how many it held).
    Complete { who: usize, pick: usize },
    /// The leader releases claims whose lease has ended.
    Rescue,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..2usize, any::<bool>()).prop_map(|(who, live)| Op::Claim { who, live }),
        4 => (0..2usize, 0..16usize).prop_map(|(who, pick)| Op::Complete { who, pick }),
        1 => Just(Op::Rescue),
    ]
}

/// What the model knows of one delivery.
#[derive(Debug, Clone, Default)]
struct Model {
    token: i64,
    /// The latest claim's owner and whether its lease still holds.
    holder: Option<(usize, bool)>,
    sent: bool,
    uncertain: bool,
}

const DELIVERIES: usize = 5;

fn run(ops: &[Op], ledgers: &[PgLedger; 2]) {
    let t0 = Utc::now() - Duration::seconds(10);
    let deliveries: Vec<NewDelivery> = (0..DELIVERIES)
        .map(|i| NewDelivery {
            id: format!("d{i}"),
            recipient: "self".into(),
            channel: "sms".into(),
            channel_index: 0,
            due: t0,
            late: false,
        })
        .collect();
    let firing = NewFiring::new("meds", Kind::Medication, Purpose::Main.ledger_key(), t0);
    let recorded = ledgers[0].record_firings(&[(firing, deliveries)]).unwrap();
    assert_eq!(recorded.len(), DELIVERIES, "recorded anew");
    let mut model: HashMap<String, Model> = (0..DELIVERIES)
        .map(|i| (format!("d{i}"), Model::default()))
        .collect();
    let mut held: [Vec<Fence>; 2] = [Vec::new(), Vec::new()];
    let term = ledgers[0]
        .elect(Duration::minutes(5))
        .unwrap()
        .expect("a leader");
    let claim =
        |who: usize, live: bool, model: &mut HashMap<String, Model>, held: &mut [Vec<Fence>; 2]| {
            let lease = if live {
                Duration::minutes(1)
            } else {
                Duration::zero()
            };
            let now = Utc::now();
            let got = ledgers[who]
                .claim_due(now, now + lease, &mut |_| usize::MAX)
                .unwrap();
            let mut want: Vec<&String> = model
                .iter()
                .filter(|(_, m)| !m.sent && !matches!(m.holder, Some((_, true))))
                .map(|(id, _)| id)
                .collect();
            want.sort();
            let mut ids: Vec<&String> = got.iter().map(|d| &d.id).collect();
            ids.sort();
            assert_eq!(ids, want, "a claim takes exactly what is free");
            for d in &got {
                let m = model.get_mut(&d.id).unwrap();
                assert_eq!(d.claim, m.token + 1, "the next fencing token");
                m.uncertain |= m.holder.is_some();
                assert_eq!(d.uncertain, m.uncertain, "uncertain after an ended claim");
                m.token = d.claim;
                m.holder = Some((who, live));
                held[who].push(d.fence());
            }
        };
    for op in ops {
        match *op {
            Op::Claim { who, live } => claim(who, live, &mut model, &mut held),
            Op::Complete { who, pick } => {
                if held[who].is_empty() {
                    continue;
                }
                let fence = held[who][pick % held[who].len()].clone();
                let m = model.get_mut(&fence.id).unwrap();
                let expect = !m.sent
                    && m.token == fence.claim
                    && matches!(m.holder, Some((w, _)) if w == who);
                let done = ledgers[who].mark_sent(&fence, None, Utc::now()).unwrap();
                assert_eq!(done, expect, "completion under {fence:?} with {m:?}");
                if done {
                    m.sent = true;
                    m.holder = None;
                }
            }
            Op::Rescue => {
                let done = ledgers[0].maintain(&term).unwrap();
                let ended = model
                    .values_mut()
                    .filter(|m| !m.sent && matches!(m.holder, Some((_, false))))
                    .map(|m| {
                        m.uncertain = true;
                        m.holder = None;
                    })
                    .count();
                assert_eq!(
                    done.rescued as usize, ended,
                    "the leader releases ended claims"
                );
            }
        }
    }
    // Liveness: with the live leases let go (their holders complete), everything is sent,
    // once.
    for who in 0..2 {
        for fence in held[who].clone() {
            let m = &model[&fence.id];
            if !m.sent && m.token == fence.claim && matches!(m.holder, Some((w, _)) if w == who) {
                assert!(ledgers[who].mark_sent(&fence, None, Utc::now()).unwrap());
                model.get_mut(&fence.id).unwrap().sent = true;
            }
        }
    }
    for d in ledgers[1]
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(1), &mut |_| {
            usize::MAX
        })
        .unwrap()
    {
        assert!(ledgers[1].mark_sent(&d.fence(), None, Utc::now()).unwrap());
    }
    let sent = ledgers[0].in_state(State::Sent, 100).unwrap();
    assert_eq!(sent.len(), DELIVERIES, "everything sent in the end");
    assert!(
        sent.iter().all(|d| d.attempts == 1),
        "each marked sent once"
    );
}

#[test]
fn the_claim_protocol_agrees_with_its_model() {
    let url = pg_url();
    let ledgers = [PgLedger::open(&url).unwrap(), PgLedger::open(&url).unwrap()];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let reset = |l: &PgLedger| {
        l.run(async {
            sqlx::query("TRUNCATE deliveries, answers, watches, snoozes, firings, leader")
                .execute(&l.pool)
                .await
                .map(|_| ())
        })
        .unwrap()
    };
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            reset(&ledgers[0]);
            run(&ops, &ledgers);
            Ok(())
        })
        .unwrap();
}
