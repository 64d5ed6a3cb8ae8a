//! Properties over generated input (proptest, bounded case counts so the suite stays fast;
//! `PROPTEST_CASES=N` runs more):
//! - whatever the load step accepts offline, `rehearse` (firings, ledger records, delivery
//!   times, rendered messages handed to plugins) runs for 1,000 firings or ten years without
//!   panicking or running away;
//! - the time rules: each local day gets one firing per distinct instant its `at` times
//!   resolve to, gaps move to the first valid instant, folds fire once, firings strictly
//!   increase.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

use kithd::diagnostic::SourceFile;
use kithd::load::{Secrets, load_source, rehearse};
use kithd::plugin::Registry;

const ZONES: &[&str] = &[
    "UTC",
    "Europe/Berlin",
    "Europe/Dublin",
    "America/New_York",
    "America/St_Johns",
    "America/Santiago",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Apia",
    "Pacific/Chatham",
    "Asia/Kolkata",
    "Africa/Casablanca",
    "Antarctica/Troll",
];

fn registry() -> Registry {
    Registry::load(std::path::Path::new("/nonexistent-plugin-dir")).unwrap()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn zone() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(ZONES)
}

fn clock() -> impl Strategy<Value = String> {
    (0u32..24, 0u32..60).prop_map(|(h, m)| format!("{h:02}:{m:02}"))
}

fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        (1u32..600).prop_map(|m| format!("{m}m")),
        (1u32..72).prop_map(|h| format!("{h}h")),
        (1u32..3650).prop_map(|d| format!("{d}d")),
        (1u32..520).prop_map(|w| format!("{w}w")),
        (1u32..30, 1u32..59).prop_map(|(d, m)| format!("{d}d{m}m")),
    ]
}

fn datetime() -> impl Strategy<Value = String> {
    (1970i32..=9999, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60)
        .prop_map(|(y, mo, d, h, mi)| format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}"))
}

fn cron() -> impl Strategy<Value = String> {
    (
        proptest::option::of(0u32..60),
        prop_oneof![
            Just("*".to_string()),
            (0u32..60).prop_map(|m| m.to_string()),
            (1u32..30).prop_map(|s| format!("*/{s}"))
        ],
        prop_oneof![
            Just("*".to_string()),
            (0u32..24).prop_map(|h| h.to_string()),
            Just("8-18".to_string())
        ],
        prop_oneof![
            Just("*".to_string()),
            (1u32..32).prop_map(|d| d.to_string()),
            Just("29".to_string()),
            Just("31".to_string())
        ],
        prop_oneof![
            Just("*".to_string()),
            (1u32..13).prop_map(|m| m.to_string()),
            Just("feb".to_string())
        ],
        prop_oneof![
            Just("*".to_string()),
            Just("mon-fri".to_string()),
            Just("sun".to_string())
        ],
    )
        .prop_map(|(s, mi, h, dom, mo, dow)| match s {
            Some(s) => format!("{s} {mi} {h} {dom} {mo} {dow}"),
            None => format!("{mi} {h} {dom} {mo} {dow}"),
        })
}

/// One item of any kind and schedule form, as TOML.
fn item(i: usize) -> impl Strategy<Value = String> {
    let schedule = prop_oneof![
        proptest::collection::vec(clock(), 1..4).prop_map(|ts| {
            let ts: Vec<String> = ts.iter().map(|t| format!("\"{t}\"")).collect();
            format!("at = [{}]", ts.join(", "))
        }),
        cron().prop_map(|c| format!("cron = \"{c}\"")),
        (duration(), datetime()).prop_map(|(d, s)| format!("every = \"{d}\"\nstart = \"{s}\"")),
    ];
    prop_oneof![
        (schedule.clone(), any::<bool>(), proptest::option::of(duration())).prop_map(
            move |(s, urgent, within)| {
                let answer = within
                    .map(|w| format!("expect_reply_within = \"{w}\"\nnag = \"30m x2\"\nescalate = [\"sam\"]\n"))
                    .unwrap_or_default();
                format!("[[checkin]]\nid = \"c{i}\"\n{s}\nurgent = {urgent}\n{answer}message = \"How are you, {{person}}?\"\n")
            }
        ),
        (schedule.clone(), proptest::option::of(duration())).prop_map(move |(s, within)| {
            let answer = within
                .map(|w| format!("confirm_within = \"{w}\"\nescalate = [\"sam\"]\nescalate_every = \"1h\"\n"))
                .unwrap_or_default();
            format!("[[medication]]\nid = \"m{i}\"\nname = \"lithium\"\ndose = \"300 mg\"\n{s}\n{answer}message = \"{{name}} {{dose}} at {{time}}\"\n")
        }),
        (schedule, any::<bool>()).prop_map(move |(s, quiet)| {
            format!("[[followup]]\nid = \"f{i}\"\nwith = \"sam\"\n{s}\nrespect_quiet_hours = {quiet}\nmessage = \"Call {{with}}?\"\n")
        }),
        (datetime(), proptest::collection::vec(duration(), 0..3), proptest::option::of(duration()))
            .prop_map(move |(when, before, after)| {
                let before: Vec<String> = before.iter().map(|d| format!("\"{d}\"")).collect();
                let after = after
                    .map(|a| format!("followup_after = \"{a}\"\n"))
                    .unwrap_or_default();
                format!("[[appointment]]\nid = \"a{i}\"\nwhen = \"{when}\"\nremind_before = [{}]\n{after}title = \"Therapy\"\nmessage = \"{{title}} {{in}}\"\n", before.join(", "))
            }),
    ]
}

fn plan() -> impl Strategy<Value = String> {
    (
        zone(),
        zone(),
        proptest::option::of((clock(), clock())),
        (0usize..6).prop_flat_map(|n| {
            (0..n).map(item).collect::<Vec<_>>()
        }),
    )
        .prop_map(|(tz, sam_tz, quiet, items)| {
            let quiet = quiet
                .filter(|(a, b)| a != b)
                .map(|(a, b)| format!("quiet_hours = \"{a}-{b}\"\n"))
                .unwrap_or_default();
            format!(
                "[person]\nname = \"Alex\"\ntimezone = \"{tz}\"\n{quiet}reach = [\"console\"]\n\n[contacts.sam]\nname = \"Sam\"\nrelation = \"friend\"\ntimezone = \"{sam_tz}\"\n{quiet}consent = 2026-11-02\nreach = [\"console\"]\n\n[channels.console]\nplugin = \"console\"\n\n{}",
                items.join("\n")
            )
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn what_check_accepts_runs_for_a_thousand_firings(text in plan(), from in 0i64..(8_000 * 366 * 86_400)) {
        let source = SourceFile::new("plan.toml", text.clone());
        let from = DateTime::<Utc>::from_timestamp(from, 0).unwrap();
        if let Ok(loaded) = load_source(source, registry(), Secrets::Offline, from) {
            let t = Instant::now();
            rehearse(&loaded.snapshot, from, 1000);
            prop_assert!(t.elapsed() < Duration::from_secs(30), "ran away: {text}");
        }
    }

    #[test]
    fn each_local_day_fires_once_per_distinct_instant(
        tz in zone(),
        day in 0i64..(60 * 366),
        times in proptest::collection::btree_set((0u32..24, 0u32..60), 1..4),
        days in proptest::collection::btree_set(0u32..7, 1..8),
    ) {
        let zone: Tz = tz.parse().unwrap();
        let names = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
        let day_list: Vec<String> = days.iter().map(|d| format!("\"{}\"", names[*d as usize])).collect();
        let at: Vec<String> = times.iter().map(|(h, m)| format!("\"{h:02}:{m:02}\"")).collect();
        let text = format!(
            "[person]\nname = \"A\"\ntimezone = \"{tz}\"\nreach = [\"console\"]\n[channels.console]\nplugin = \"console\"\n[[checkin]]\nid = \"c\"\nat = [{}]\ndays = [{}]\nmessage = \"hi\"\n",
            at.join(", "),
            day_list.join(", ")
        );
        let base = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + chrono::Duration::days(day);
        let now = Utc::now();
        let loaded = load_source(SourceFile::new("p.toml", text), registry(), Secrets::Offline, now)
            .map_err(|f| TestCaseError::fail(f.render())).unwrap();
        let plan = &loaded.snapshot.plan;
        let clocks: Vec<NaiveTime> = times.iter().map(|(h, m)| NaiveTime::from_hms_opt(*h, *m, 0).unwrap()).collect();
        let resolve = |d: NaiveDate, t: NaiveTime| kithd::clock::resolve_local(zone, d.and_time(t));
        let from = resolve(base - chrono::Duration::days(2), NaiveTime::MIN);
        let until = resolve(base + chrono::Duration::days(3), NaiveTime::MIN);
        let items = [plan.items[0].as_ref()];
        let got: Vec<DateTime<Utc>> = kithd::schedule::upcoming_of(&items, from, until, 10_000)
            .into_iter()
            .map(|f| f.at)
            .collect();
        // Firings strictly increase.
        prop_assert!(got.windows(2).all(|w| w[0] < w[1]), "{got:?}");
        // One per distinct instant of each selected local day.
        let mut expected: Vec<DateTime<Utc>> = (-3..=4)
            .map(|k| base + chrono::Duration::days(k))
            .filter(|d| days.contains(&d.weekday().num_days_from_monday()))
            .flat_map(|d| clocks.iter().map(move |t| (d, *t)))
            .map(|(d, t)| resolve(d, t))
            .filter(|at| *at > from && *at <= until)
            .collect();
        expected.sort();
        expected.dedup();
        prop_assert_eq!(&got, &expected);
        // Independently of `resolve_local`: a time that exists fires at that wall-clock
        // time (the first of a fold); a time in a gap fires at the instant the clocks jump.
        for d in (-1..=2).map(|k| base + chrono::Duration::days(k)) {
            if !days.contains(&d.weekday().num_days_from_monday()) {
                continue;
            }
            for t in &clocks {
                let local = d.and_time(*t);
                match zone.from_local_datetime(&local) {
                    LocalResult::Single(x) => prop_assert!(got.contains(&x.with_timezone(&Utc))),
                    LocalResult::Ambiguous(a, b) => {
                        let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                        prop_assert!(got.contains(&a.min(b)) && !got.contains(&a.max(b)), "a fold fired twice");
                    }
                    LocalResult::None => {
                        let at = resolve(d, *t);
                        prop_assert!(got.contains(&at));
                        let before = (at - chrono::Duration::seconds(1)).with_timezone(&zone).naive_local();
                        let after = at.with_timezone(&zone).naive_local();
                        prop_assert!(before < local && after > local, "not the first valid instant: {local} -> {after}");
                    }
                }
            }
        }
    }
}
