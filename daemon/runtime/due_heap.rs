//! The due heap: each item's next firing instant in a binary heap. The runtime sleeps until the
//! earliest one (no polling). Owns "what fires next"; it must not sleep, dispatch or read
//! the clock itself.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::plan::{IdIndex, Item, Kind, ScheduleSpec};
use crate::schedule::{Purpose, next_after};

/// A firing that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub item: String,
    pub at: DateTime<Utc>,
    pub purpose: Purpose,
}

/// What the runtime needs from a scheduler.
pub trait Scheduler {
    /// Adds or replaces an item; its next firing is the first strictly after `after`.
    fn upsert(&mut self, item: &Arc<Item>, after: DateTime<Utc>);
    fn remove(&mut self, id: &str);
    /// The earliest pending firing instant.
    fn next_due(&mut self) -> Option<DateTime<Utc>>;
    /// Every firing due at or before `now`, in time order. The items do not move on until
    /// `advance` is called, so computing next firings never delays the due ones.
    fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<Due>;
    /// Schedules the next firing of each item in `fired` (after the instant it fired).
    fn advance(&mut self, fired: &[Due]);
    /// Forgets everything (no firing is produced after this).
    fn shutdown(&mut self);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A heap entry: firing instant (ms since the epoch), slot, slot generation. Kept to 16
/// bytes so that a heap of 100,000 items stays cache-friendly.
type Entry = Reverse<(i64, u32, u32)>;

struct Slot {
    item: Arc<Item>,
    generation: u32,
    /// The purpose and exact instant of the pending firing.
    pending: Option<(DateTime<Utc>, Purpose)>,
    live: bool,
}

/// A binary heap keyed by instant, with lazy deletion by slot generation.
#[derive(Default)]
pub struct HeapScheduler {
    heap: BinaryHeap<Entry>,
    slots: Vec<Slot>,
    /// Slot by item id (the ids stay in the slots' items).
    by_id: IdIndex,
    free: Vec<u32>,
}

impl HeapScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    /// Room for `n` items up front (a large plan's start doesn't regrow the tables).
    pub fn with_capacity(n: usize) -> Self {
        Self {
            heap: BinaryHeap::with_capacity(n),
            slots: Vec::with_capacity(n),
            by_id: IdIndex::with_capacity(n),
            free: Vec::new(),
        }
    }

    /// The item's slot: its own if it has one (a reload), else a new one.
    fn place(&mut self, item: &Arc<Item>) -> u32 {
        let slots = &self.slots;
        match self
            .by_id
            .get(&item.id, |p| slots[p as usize].item.id.as_str())
        {
            Some(slot) => {
                let s = &mut self.slots[slot as usize];
                s.item = item.clone();
                s.generation = s.generation.wrapping_add(1);
                slot
            }
            None => {
                let fresh = Slot {
                    item: item.clone(),
                    generation: 0,
                    pending: None,
                    live: true,
                };
                let slot = match self.free.pop() {
                    Some(slot) => {
                        let generation = self.slots[slot as usize].generation.wrapping_add(1);
                        self.slots[slot as usize] = Slot {
                            generation,
                            ..fresh
                        };
                        slot
                    }
                    None => {
                        self.slots.push(fresh);
                        (self.slots.len() - 1) as u32
                    }
                };
                let slots = &self.slots;
                self.by_id
                    .insert(&item.id, slot, |p| slots[p as usize].item.id.as_str());
                slot
            }
        }
    }

    /// Adds every item of a plan at start. Items that share a cron expression and a zone
    /// (a large plan's usual case: the same morning check-in for many people) share the
    /// computation of their next firing, and the heap is built in one go.
    pub fn fill(&mut self, items: &[Arc<Item>], after: DateTime<Utc>) {
        type Next = Option<(DateTime<Utc>, Purpose)>;
        let mut shared: HashMap<(usize, chrono_tz::Tz), Next> = HashMap::new();
        let mut entries = Vec::with_capacity(items.len());
        for item in items {
            let slot = self.place(item);
            // Without `except` and outside appointments, a cron item's next firing depends
            // on its expression, zone and `after` only.
            let next = match &item.schedule {
                ScheduleSpec::Cron { cron }
                    if item.except().is_empty() && item.kind != Kind::Appointment =>
                {
                    *shared
                        .entry((Arc::as_ptr(cron) as usize, item.timezone))
                        .or_insert_with(|| next_after(item, after))
                }
                _ => next_after(item, after),
            };
            let s = &mut self.slots[slot as usize];
            s.pending = next;
            if let Some((at, _)) = next {
                entries.push(Reverse((at.timestamp_millis(), slot, s.generation)));
            }
        }
        self.heap.extend(entries);
    }

    fn push_next(&mut self, slot: u32, after: DateTime<Utc>) {
        let s = &mut self.slots[slot as usize];
        s.pending = next_after(&s.item, after);
        if let Some((at, _)) = s.pending {
            self.heap
                .push(Reverse((at.timestamp_millis(), slot, s.generation)));
        }
    }

    /// The items with the `n` earliest pending firings (an item has one), earliest first.
    /// Every one of the `n` earliest firings overall belongs to one of them.
    pub fn earliest(&self, n: usize) -> Vec<Arc<Item>> {
        let mut live: Vec<(i64, u32)> = self
            .heap
            .iter()
            .filter(|e| self.is_live(e))
            .map(|Reverse((at, slot, _))| (*at, *slot))
            .collect();
        if live.len() > n {
            live.select_nth_unstable(n);
            live.truncate(n);
        }
        live.sort_unstable();
        live.into_iter()
            .map(|(_, slot)| self.slots[slot as usize].item.clone())
            .collect()
    }

    fn is_live(&self, e: &Entry) -> bool {
        let Reverse((_, slot, generation)) = *e;
        self.slots
            .get(slot as usize)
            .is_some_and(|s| s.live && s.generation == generation)
    }
}

impl Scheduler for HeapScheduler {
    fn upsert(&mut self, item: &Arc<Item>, after: DateTime<Utc>) {
        let slot = self.place(item);
        self.push_next(slot, after);
    }

    fn remove(&mut self, id: &str) {
        let slots = &self.slots;
        if let Some(slot) = self
            .by_id
            .remove(id, |p| slots[p as usize].item.id.as_str())
        {
            let s = &mut self.slots[slot as usize];
            s.live = false;
            s.pending = None;
            self.free.push(slot);
        }
    }

    fn next_due(&mut self) -> Option<DateTime<Utc>> {
        while let Some(top) = self.heap.peek() {
            if self.is_live(top) {
                let Reverse((_, slot, _)) = *top;
                return self.slots[slot as usize].pending.map(|p| p.0);
            }
            self.heap.pop();
        }
        None
    }

    fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let now_ms = now.timestamp_millis();
        let mut out = Vec::new();
        while let Some(&top) = self.heap.peek() {
            let Reverse((at_ms, slot, _)) = top;
            if at_ms > now_ms {
                break;
            }
            self.heap.pop();
            if !self.is_live(&top) {
                continue;
            }
            let s = &self.slots[slot as usize];
            if let Some((at, purpose)) = s.pending
                && at <= now
            {
                out.push(Due {
                    item: s.item.id.clone(),
                    at,
                    purpose,
                });
            }
        }
        out
    }

    fn advance(&mut self, fired: &[Due]) {
        for d in fired {
            let slots = &self.slots;
            if let Some(slot) = self
                .by_id
                .get(&d.item, |p| slots[p as usize].item.id.as_str())
            {
                self.push_next(slot, d.at);
            }
        }
    }

    fn shutdown(&mut self) {
        self.heap.clear();
        self.slots.clear();
        self.by_id.clear();
        self.free.clear();
    }

    fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(src: &str) -> Vec<Arc<Item>> {
        let text = format!(
            "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n{src}"
        );
        crate::plan::testing::test_plan(&text).items
    }

    #[test]
    fn pops_in_order_and_moves_on() {
        let its = items(
            "[[checkin]]\nid = \"a\"\nat = [\"08:00\", \"20:00\"]\nmessage = \"x\"\n[[checkin]]\nid = \"b\"\nat = \"12:00\"\nmessage = \"x\"\n",
        );
        let mut s = HeapScheduler::new();
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        for i in &its {
            s.upsert(i, t0);
        }
        assert_eq!(
            s.next_due().unwrap().to_rfc3339(),
            "2026-12-01T08:00:00+00:00"
        );
        let ids = |v: Vec<Arc<Item>>| v.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(s.earliest(1)), vec!["a"]);
        assert_eq!(ids(s.earliest(5)), vec!["a", "b"]);
        let mut due = s.pop_due("2026-12-01T20:00:00Z".parse().unwrap());
        // Not advanced yet: only the first firing of each item.
        assert_eq!(due.len(), 2);
        s.advance(&due);
        let more = s.pop_due("2026-12-01T20:00:00Z".parse().unwrap());
        s.advance(&more);
        due.extend(more);
        let got: Vec<_> = due
            .iter()
            .map(|d| (d.item.as_str(), d.at.format("%H").to_string()))
            .collect();
        assert_eq!(
            got,
            vec![("a", "08".into()), ("b", "12".into()), ("a", "20".into())]
        );
        assert_eq!(
            s.next_due().unwrap().to_rfc3339(),
            "2026-12-02T08:00:00+00:00"
        );
    }

    #[test]
    fn upsert_replaces_and_remove_forgets() {
        let its = items("[[checkin]]\nid = \"a\"\nat = \"08:00\"\nmessage = \"x\"\n");
        let mut s = HeapScheduler::new();
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        s.upsert(&its[0], t0);
        s.upsert(&its[0], t0); // a reload: still one firing, not two
        let due = s.pop_due("2026-12-01T09:00:00Z".parse().unwrap());
        assert_eq!(due.len(), 1);
        s.advance(&due);
        s.remove("a");
        assert_eq!(s.next_due(), None);
        assert!(
            s.pop_due("2026-12-09T00:00:00Z".parse().unwrap())
                .is_empty()
        );
    }

    #[test]
    fn filling_at_start_fires_exactly_as_adding_one_by_one() {
        let its = items(concat!(
            "[[checkin]]\nid = \"a\"\ncron = \"30 8 * * *\"\nmessage = \"x\"\n",
            "[[checkin]]\nid = \"b\"\ncron = \"30 8 * * *\"\nmessage = \"y\"\n",
            "[[checkin]]\nid = \"c\"\ncron = \"30 8 * * *\"\ntimezone = \"Europe/Berlin\"\nmessage = \"x\"\n",
            "[[checkin]]\nid = \"d\"\ncron = \"30 8 * * *\"\nexcept = [\"2026-03-29\"]\nmessage = \"x\"\n",
            "[[medication]]\nid = \"e\"\nname = \"n\"\nat = \"21:00\"\nmessage = \"m\"\n",
            "[[checkin]]\nid = \"f\"\ncron = \"0 2 * * *\"\ntimezone = \"Europe/Berlin\"\nmessage = \"x\"\n",
        ));
        // Across a spring change, from an instant between firings.
        let t0: DateTime<Utc> = "2026-03-27T12:00:00Z".parse().unwrap();
        let mut one = HeapScheduler::new();
        for item in &its {
            one.upsert(item, t0);
        }
        let mut all = HeapScheduler::with_capacity(its.len());
        all.fill(&its, t0);
        assert_eq!(all.len(), one.len());
        let mut fired = 0;
        for hour in 1..=24 * 5 {
            let now = t0 + chrono::Duration::hours(hour);
            let (a, b) = (all.pop_due(now), one.pop_due(now));
            assert_eq!(a, b, "at {now}");
            fired += a.len();
            all.advance(&a);
            one.advance(&b);
        }
        assert!(fired >= 25, "only {fired} firings");
    }
}
