//! An index from an item id to a position that stores only positions: the ids stay where
//! they already are (in the items), so a large plan doesn't hold each id two or three
//! times. Must not own the items.

use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};

/// Positions keyed by the id found at each position (`id_at`).
#[derive(Debug, Default, Clone)]
pub struct IdIndex {
    table: HashTable<u32>,
    /// foldhash, seeded per process: several times faster than SipHash on short ids.
    hasher: DefaultHashBuilder,
}

impl IdIndex {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            table: HashTable::with_capacity(n),
            hasher: DefaultHashBuilder::default(),
        }
    }

    pub fn get<'a>(&self, id: &str, id_at: impl Fn(u32) -> &'a str) -> Option<u32> {
        self.table
            .find(self.hasher.hash_one(id), |p| id_at(*p) == id)
            .copied()
    }

    /// Adds `pos` under `id` (the id at `pos`); an id already present keeps its position.
    pub fn insert<'a>(&mut self, id: &str, pos: u32, id_at: impl Fn(u32) -> &'a str) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(id);
        if self.table.find(hash, |p| id_at(*p) == id).is_none() {
            self.table
                .insert_unique(hash, pos, |p| hasher.hash_one(id_at(*p)));
        }
    }

    pub fn remove<'a>(&mut self, id: &str, id_at: impl Fn(u32) -> &'a str) -> Option<u32> {
        match self
            .table
            .find_entry(self.hasher.hash_one(id), |p| id_at(*p) == id)
        {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    pub fn clear(&mut self) {
        self.table.clear();
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_inserts_and_removes_by_the_id_at_each_position() {
        let ids: Vec<String> = (0..1000).map(|i| format!("item-{i}")).collect();
        let at = |p: u32| ids[p as usize].as_str();
        let mut index = IdIndex::default();
        for p in 0..1000u32 {
            index.insert(&ids[p as usize], p, at);
        }
        index.insert("item-7", 999, at); // already there: unchanged
        assert_eq!(index.len(), 1000);
        assert_eq!(index.get("item-7", at), Some(7));
        assert_eq!(index.get("item-1000", at), None);
        assert_eq!(index.remove("item-7", at), Some(7));
        assert_eq!(index.get("item-7", at), None);
        assert_eq!(index.remove("item-7", at), None);
        assert_eq!(index.get("item-999", at), Some(999));
    }
}
