//! A validated plan in a compact binary form, so that a restart with a large plan unchanged
//! skips parsing and validating it again. Owns the encoding only: what is shared in memory
//! (an item's message, its recipients, its cron expression) is written once and shared
//! again when read. It must not decide when a copy is used, nor touch files (that is
//! `plan_cache`'s job), and it trusts nothing it reads: anything unexpected is `None`.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDateTime, NaiveTime};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::{
    AnswerPolicy, CatchUp, DaySet, Item, ItemExtra, Kind, Loaded, Plan, PlanDuration, ScheduleSpec,
    Template, schedule_spec,
};
use crate::diagnostic::Diagnostic;

/// Everything but the items (small, written as it is), and `load`'s warnings.
#[derive(Serialize, Deserialize)]
struct Head<P, W> {
    plan: P,
    warnings: W,
}

/// What items share, each written once; items refer to it by position.
#[derive(Serialize, Deserialize)]
struct Shared<'a> {
    #[serde(borrow)]
    crons: Vec<Cow<'a, str>>,
    zones: Vec<Tz>,
    messages: Vec<Cow<'a, Template>>,
    to: Vec<Vec<Cow<'a, str>>>,
    items: u32,
}

#[derive(Serialize, Deserialize)]
enum Schedule {
    At {
        times: Vec<NaiveTime>,
        days: DaySet,
    },
    Cron(u32),
    Every {
        period: PlanDuration,
        start: NaiveDateTime,
    },
    When(NaiveDateTime),
}

#[derive(Serialize, Deserialize)]
struct Row<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    span: (usize, usize),
    kind: Kind,
    schedule: Schedule,
    zone: u32,
    message: u32,
    to: u32,
    /// urgent, respect_quiet_hours, show_on_page.
    flags: u8,
    catch_up: CatchUp,
    answer: Option<Cow<'a, AnswerPolicy>>,
    fields: Cow<'a, BTreeMap<String, String>>,
    extra: Option<Cow<'a, ItemExtra>>,
}

/// Positions of shared values, by identity while encoding.
struct Interner<K, V> {
    at: HashMap<K, u32>,
    values: Vec<V>,
}

impl<K: std::hash::Hash + Eq, V> Interner<K, V> {
    fn new() -> Self {
        Self {
            at: HashMap::new(),
            values: Vec::new(),
        }
    }

    fn put(&mut self, key: K, value: impl FnOnce() -> V) -> u32 {
        let next = self.values.len() as u32;
        *self.at.entry(key).or_insert_with(|| {
            self.values.push(value());
            next
        })
    }
}

/// The plan as `load` returned it (its warnings included), encoded; `None` only if a value
/// can't be (never expected: every type here serializes).
pub fn encode(plan: &Plan, warnings: &[Diagnostic]) -> Option<Vec<u8>> {
    let mut crons = Interner::new();
    let mut zones = Interner::new();
    let mut messages = Interner::new();
    let mut to = Interner::new();
    // The shared values first (rows refer to them), then one row at a time: a large
    // plan's rows are never all held at once.
    let refs: Vec<[u32; 4]> = plan
        .items
        .iter()
        .map(|item| {
            let cron = match &item.schedule {
                ScheduleSpec::Cron { cron } => {
                    crons.put(Arc::as_ptr(cron) as usize, || Cow::Borrowed(cron.as_str()))
                }
                _ => 0,
            };
            [
                cron,
                zones.put(item.timezone, || item.timezone),
                messages.put(Arc::as_ptr(&item.message) as usize, || {
                    Cow::Borrowed(item.message.as_ref())
                }),
                to.put(Arc::as_ptr(&item.to) as *const String as usize, || {
                    item.to.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
                }),
            ]
        })
        .collect();
    let shared = Shared {
        crons: crons.values,
        zones: zones.values,
        messages: messages.values,
        to: to.values,
        items: plan.items.len() as u32,
    };
    let mut out = Vec::with_capacity(plan.items.len() * 48 + 4096);
    put(&mut out, &Head { plan, warnings })?;
    put(&mut out, &shared)?;
    for (item, [cron, zone, message, to]) in plan.items.iter().zip(refs) {
        let row = Row {
            id: Cow::Borrowed(&item.id),
            span: (item.span.start, item.span.end),
            kind: item.kind,
            schedule: match &item.schedule {
                ScheduleSpec::At { times, days } => Schedule::At {
                    times: times.clone(),
                    days: *days,
                },
                ScheduleSpec::Cron { .. } => Schedule::Cron(cron),
                ScheduleSpec::Every { period, start } => Schedule::Every {
                    period: *period,
                    start: *start,
                },
                ScheduleSpec::When(t) => Schedule::When(*t),
            },
            zone,
            message,
            to,
            flags: u8::from(item.urgent)
                | u8::from(item.respect_quiet_hours) << 1
                | u8::from(item.show_on_page) << 2,
            catch_up: item.catch_up,
            answer: item.answer.as_deref().map(Cow::Borrowed),
            fields: Cow::Borrowed(&item.fields),
            extra: item.extra.as_deref().map(Cow::Borrowed),
        };
        put(&mut out, &row)?;
    }
    Some(out)
}

/// Appends one value.
fn put<T: Serialize>(out: &mut Vec<u8>, value: &T) -> Option<()> {
    *out = postcard::to_extend(value, std::mem::take(out)).ok()?;
    Some(())
}

/// Reads what `encode` wrote; `None` if it is anything else.
pub fn decode(bytes: &[u8]) -> Option<Loaded> {
    let (head, bytes) = postcard::take_from_bytes::<Head<Plan, Vec<Diagnostic>>>(bytes).ok()?;
    let (shared, mut bytes) = postcard::take_from_bytes::<Shared>(bytes).ok()?;
    let crons = shared
        .crons
        .iter()
        .map(|c| schedule_spec::parse_cron(c).ok().map(Arc::new))
        .collect::<Option<Vec<_>>>()?;
    let messages: Vec<Arc<Template>> = shared
        .messages
        .into_iter()
        .map(|m| Arc::new(m.into_owned()))
        .collect();
    let to: Vec<Arc<[String]>> = shared
        .to
        .into_iter()
        .map(|t| t.into_iter().map(Cow::into_owned).collect())
        .collect();
    let mut items = Vec::with_capacity((shared.items as usize).min(bytes.len()));
    for _ in 0..shared.items {
        let (row, after) = postcard::take_from_bytes::<Row>(bytes).ok()?;
        bytes = after;
        let schedule = match row.schedule {
            Schedule::At { times, days } => ScheduleSpec::At { times, days },
            Schedule::Cron(i) => ScheduleSpec::Cron {
                cron: crons.get(i as usize)?.clone(),
            },
            Schedule::Every { period, start } => ScheduleSpec::Every { period, start },
            Schedule::When(t) => ScheduleSpec::When(t),
        };
        items.push(Arc::new(Item {
            id: row.id.into_owned(),
            span: row.span.0..row.span.1,
            kind: row.kind,
            schedule,
            timezone: *shared.zones.get(row.zone as usize)?,
            message: messages.get(row.message as usize)?.clone(),
            to: to.get(row.to as usize)?.clone(),
            urgent: row.flags & 1 != 0,
            respect_quiet_hours: row.flags & 2 != 0,
            show_on_page: row.flags & 4 != 0,
            catch_up: row.catch_up,
            answer: row.answer.map(|a| Box::new(a.into_owned())),
            fields: row.fields.into_owned(),
            extra: row.extra.map(|e| Box::new(e.into_owned())),
        }));
    }
    if !bytes.is_empty() {
        return None;
    }
    let Head { mut plan, warnings } = head;
    plan.set_items(items);
    Some(Loaded { plan, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::plan::testing::AnyPlugin;

    /// Everything a plan holds but its index (rebuilt, not stored).
    fn view(l: &Loaded) -> String {
        let p = &l.plan;
        format!(
            "{:?}",
            (
                (
                    &p.person,
                    &p.contacts,
                    &p.channels,
                    &p.never_contact,
                    &p.away
                ),
                (&p.language, &p.id, &p.scope, &p.crisis_text, &p.retention),
                (&p.invite_message, &p.server, &p.heartbeat, &p.items),
                &l.warnings,
            )
        )
    }

    /// Every plan the repository holds that loads: examples, corpus cases with only
    /// warnings, test fixtures.
    fn plans() -> Vec<(String, Loaded)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = Vec::new();
        for dir in [
            "config",
            "config/examples",
            "tests/corpus",
            "tests/fixtures",
        ] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "toml")
                    && let Ok(text) = std::fs::read_to_string(&path)
                    && let Ok(l) = crate::plan::load(&SourceFile::new("p.toml", text), &AnyPlugin)
                {
                    out.push((path.display().to_string(), l));
                }
            }
        }
        out
    }

    #[test]
    fn a_stored_plan_reads_back_as_the_same_plan_with_the_same_warnings() {
        let plans = plans();
        assert!(plans.len() >= 8, "only {} plans found", plans.len());
        assert!(plans.iter().any(|(_, l)| !l.warnings.is_empty()));
        for (name, loaded) in &plans {
            let bytes = encode(&loaded.plan, &loaded.warnings).unwrap();
            let back = decode(&bytes).unwrap_or_else(|| panic!("{name} did not read back"));
            assert_eq!(view(&back), view(loaded), "{name}");
            for item in &loaded.plan.items {
                assert!(back.plan.item(&item.id).is_some(), "{name}: {}", item.id);
            }
        }
    }

    #[test]
    fn items_that_share_a_message_a_cron_or_recipients_share_them_again() {
        let mut text = String::from(
            "[person]\nname = \"A\"\ntimezone = \"Europe/Berlin\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n",
        );
        for i in 0..50 {
            text.push_str(&format!(
                "[[checkin]]\nid = \"c{i}\"\ncron = \"0 {} 9 * * *\"\nmessage = \"Hello\"\n",
                i % 2
            ));
        }
        let plan = crate::plan::testing::test_plan(&text);
        let back = decode(&encode(&plan, &[]).unwrap()).unwrap().plan;
        let (a, b) = (&back.items[0], &back.items[2]);
        assert!(Arc::ptr_eq(&a.message, &b.message));
        assert!(Arc::ptr_eq(&a.to, &b.to));
        match (&a.schedule, &b.schedule, &back.items[1].schedule) {
            (
                ScheduleSpec::Cron { cron: x },
                ScheduleSpec::Cron { cron: y },
                ScheduleSpec::Cron { cron: z },
            ) => {
                assert!(Arc::ptr_eq(x, y));
                assert!(!Arc::ptr_eq(x, z));
            }
            _ => panic!("not cron schedules"),
        }
    }

    #[test]
    fn a_damaged_copy_reads_as_none_never_as_a_panic() {
        let plans = plans();
        let (_, loaded) = plans
            .iter()
            .max_by_key(|(_, l)| l.plan.items.len())
            .unwrap();
        let bytes = encode(&loaded.plan, &loaded.warnings).unwrap();
        // Cut anywhere: never a plan (the copy must be whole).
        for n in 0..bytes.len() {
            assert!(decode(&bytes[..n]).is_none(), "cut at {n}");
        }
        // Any byte changed: no panic, whatever it reads as.
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x5a;
            let _ = decode(&bad);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
    }
}
