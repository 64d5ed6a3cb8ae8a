//! Plans sharing one database: two handles with the same item ids, times and recipients
//! never see, claim, answer or pause each other's rows, and their delivery ids differ.

use chrono::{Duration, DurationRound, Utc};

use crate::store::{
    HistoryFilter, Kind, NewDelivery, NewFiring, NewWatch, PgLedger, Queue, Reports, State,
    StepAction, Steps, conformance::pg_url,
};
use crate::vocab::{Pause, Purpose, delivery_id};

#[test]
fn plans_in_one_database_stay_apart() {
    let db = PgLedger::open(&pg_url()).unwrap();
    let (robin, sky) = (db.for_plan(Some("robin")), db.for_plan(Some("sky")));
    let at = Utc::now().duration_trunc(Duration::seconds(1)).unwrap() - Duration::hours(2);
    let record = |l: &PgLedger, plan: &str| {
        let mut f = NewFiring::new("mood", Kind::Checkin, Purpose::Main.ledger_key(), at);
        f.deadline = Some(at + Duration::minutes(30));
        f.watches = vec![NewWatch {
            action: StepAction::Escalate,
            step: 0,
            recipient: "sam".into(),
            due: at + Duration::minutes(30),
        }];
        let id = delivery_id(Some(plan), "mood", at, Purpose::Main, "self", "sms");
        let d = NewDelivery {
            id: id.clone(),
            recipient: "self".into(),
            channel: "sms".into(),
            channel_index: 0,
            due: at,
            late: false,
        };
        assert_eq!(l.record_firings(&[(f, vec![d])]).unwrap(), vec![id.clone()]);
        id
    };
    let (r_id, s_id) = (record(&robin, "robin"), record(&sky, "sky"));
    assert_ne!(r_id, s_id, "the same item, time and recipient in two plans");
    // Each plan claims, and steps, only its own.
    let claimed = robin
        .claim_due(Utc::now(), Utc::now() + Duration::minutes(1), &mut |_| 10)
        .unwrap();
    assert_eq!(claimed.iter().map(|d| &d.id).collect::<Vec<_>>(), [&r_id]);
    assert_eq!(robin.due_watches(Utc::now(), 10).unwrap().len(), 1);
    assert_eq!(db.due_watches(Utc::now(), 10).unwrap().len(), 0);
    assert!(
        robin
            .mark_sent(&claimed[0].fence(), None, Utc::now())
            .unwrap()
    );
    assert_eq!(sky.next_due(&[]).unwrap(), Some(at));
    // An answer to robin's check-in leaves sky's open.
    let open = robin
        .open_firing(Some("mood"), &[Kind::Checkin], Utc::now())
        .unwrap()
        .unwrap();
    robin.answer(&open, "4", None, "link", Utc::now()).unwrap();
    assert!(robin.find_firing("mood", at).unwrap().unwrap().answered);
    assert!(!sky.find_firing("mood", at).unwrap().unwrap().answered);
    assert!(db.find_firing("mood", at).unwrap().is_none());
    // Reports, the catch-up cursor and pauses are per plan.
    let all = HistoryFilter::default();
    assert_eq!(
        sky.history(&all)
            .unwrap()
            .iter()
            .map(|d| &d.id)
            .collect::<Vec<_>>(),
        [&s_id]
    );
    assert_eq!(
        robin.journal(at - Duration::days(1)).unwrap()[0]
            .value
            .as_deref(),
        Some("4")
    );
    assert_eq!(sky.journal(at - Duration::days(1)).unwrap()[0].value, None);
    assert!(db.last_scheduled().unwrap().is_empty());
    let pause = Pause {
        from: Utc::now(),
        until: Utc::now() + Duration::days(1),
        items: Vec::new(),
        kinds: Vec::new(),
        note: None,
    };
    sky.add_pause(&pause, Utc::now()).unwrap();
    assert_eq!(sky.pauses(Utc::now()).unwrap().len(), 1);
    assert!(robin.pauses(Utc::now()).unwrap().is_empty());
    assert_eq!(robin.end_pauses(Utc::now()).unwrap(), 0);
    // Sky leaves the directory: its pending delivery and step are cancelled; robin's
    // rows are untouched.
    assert_eq!(sky.retire("removed").unwrap(), (1, 1));
    assert_eq!(sky.history(&all).unwrap()[0].state, State::Cancelled);
    assert_eq!(robin.history(&all).unwrap()[0].state, State::Sent);
    assert_eq!(sky.next_watch_due().unwrap(), None);
}
