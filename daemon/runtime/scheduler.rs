//! The scheduler: a heap of each item's next firing instant. The runtime sleeps until the
//! earliest one (no polling). Owns "what fires next"; it must not sleep, dispatch or read
//! the clock itself.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use chrono::{DateTime, Utc};

use crate::plan::Item;
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
    fn upsert(&mut self, item: &Item, after: DateTime<Utc>);
    fn remove(&mut self, id: &str);
    /// The earliest pending firing instant.
    fn next_due(&mut self) -> Option<DateTime<Utc>>;
    /// Every firing due at or before `now`, in time order; each item moves on to its next.
    fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<Due>;
    /// Forgets everything (no firing is produced after this).
    fn shutdown(&mut self);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

type Entry = Reverse<(DateTime<Utc>, u64, Purpose, String)>;

/// A binary heap keyed by instant, with lazy deletion by generation.
#[derive(Default)]
pub struct HeapScheduler {
    heap: BinaryHeap<Entry>,
    /// Item id → (generation, item).
    items: HashMap<String, (u64, Item)>,
    next_generation: u64,
}

impl HeapScheduler {
    pub fn new() -> Self {
        Self::default()
    }

    fn push_next(&mut self, id: &str, after: DateTime<Utc>) {
        if let Some((generation, item)) = self.items.get(id)
            && let Some(f) = next_after(item, 0, after)
        {
            self.heap
                .push(Reverse((f.at, *generation, f.purpose, id.to_string())));
        }
    }

    fn is_live(&self, e: &Entry) -> bool {
        let Reverse((_, generation, _, id)) = e;
        self.items.get(id).is_some_and(|(g, _)| g == generation)
    }
}

impl Scheduler for HeapScheduler {
    fn upsert(&mut self, item: &Item, after: DateTime<Utc>) {
        self.next_generation += 1;
        self.items
            .insert(item.id.clone(), (self.next_generation, item.clone()));
        self.push_next(&item.id, after);
    }

    fn remove(&mut self, id: &str) {
        self.items.remove(id);
    }

    fn next_due(&mut self) -> Option<DateTime<Utc>> {
        while let Some(top) = self.heap.peek() {
            if self.is_live(top) {
                return Some(top.0.0);
            }
            self.heap.pop();
        }
        None
    }

    fn pop_due(&mut self, now: DateTime<Utc>) -> Vec<Due> {
        let mut out = Vec::new();
        while let Some(top) = self.heap.peek() {
            if top.0.0 > now {
                break;
            }
            let Some(Reverse((at, generation, purpose, id))) = self.heap.pop() else {
                break;
            };
            if self.items.get(&id).is_none_or(|(g, _)| *g != generation) {
                continue;
            }
            self.push_next(&id, at);
            out.push(Due {
                item: id,
                at,
                purpose,
            });
        }
        out
    }

    fn shutdown(&mut self) {
        self.heap.clear();
        self.items.clear();
    }

    fn len(&self) -> usize {
        self.items.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::SourceFile;
    use crate::plan::{PluginCatalog, PluginInfo};

    struct Console;
    impl PluginCatalog for Console {
        fn lookup(&self, _: &str) -> Option<PluginInfo> {
            Some(PluginInfo { address: None })
        }
        fn names(&self) -> Vec<String> {
            vec![]
        }
    }

    fn items(src: &str) -> Vec<Item> {
        let text = format!(
            "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n{src}"
        );
        crate::plan::load(&SourceFile::new("t", text), &Console)
            .unwrap()
            .plan
            .items
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
        let due = s.pop_due("2026-12-01T20:00:00Z".parse().unwrap());
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
        assert_eq!(s.pop_due("2026-12-01T09:00:00Z".parse().unwrap()).len(), 1);
        s.remove("a");
        assert_eq!(s.next_due(), None);
        assert!(
            s.pop_due("2026-12-09T00:00:00Z".parse().unwrap())
                .is_empty()
        );
    }
}
