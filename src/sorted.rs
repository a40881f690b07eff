//! Maps and sets keyed by `String`, kept as one sorted `Vec`.
//!
//! The page's state (prompts, topics, action counts, traits) holds a few
//! dozen entries at most (see [`crate::state`]'s limits). `BTreeMap` and
//! `BTreeSet` put 17.8 kB of node code into the page's wasm, monomorphised
//! per value type; a sorted `Vec` with binary search does the same job in a
//! fraction of it and iterates in the same (key) order, so the state it
//! serialises and the answers built from it are unchanged.

/// A map from `String` keys, iterated in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedMap<V> {
    entries: Vec<(String, V)>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> SortedMap<V> {
    /// An empty map.
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// Where `key` is (`Ok`) or would go (`Err`).
    fn find(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.find(key).ok().and_then(|i| self.entries.get(i)).map(|(_, v)| v)
    }

    /// The value of `key`, to change.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let i = self.find(key).ok()?;
        self.entries.get_mut(i).map(|(_, v)| v)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.find(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        match self.find(&key) {
            Ok(i) => self.entries.get_mut(i).map(|(_, old)| std::mem::replace(old, value)),
            Err(i) => {
                self.entries.insert(i, (key, value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let i = self.find(key).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// The entry of `key`, to fill in if empty.
    pub fn entry(&mut self, key: String) -> Entry<'_, V> {
        Entry { map: self, key }
    }

    /// The entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.entries.iter().map(|(_, v)| v)
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// Removes and returns the entry with the greatest key.
    pub fn pop_last(&mut self) -> Option<(String, V)> {
        self.entries.pop()
    }
}

impl<V> std::ops::Index<&str> for SortedMap<V> {
    type Output = V;

    /// The value of `key`; panics without one, as `BTreeMap`'s does.
    fn index(&self, key: &str) -> &V {
        match self.get(key) {
            Some(value) => value,
            None => panic!("no entry {key:?}"),
        }
    }
}

impl<'a, V> IntoIterator for &'a SortedMap<V> {
    type Item = (&'a String, &'a V);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, V)>, fn(&'a (String, V)) -> (&'a String, &'a V)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

/// An entry of a [`SortedMap`] (see [`SortedMap::entry`]).
pub struct Entry<'a, V> {
    map: &'a mut SortedMap<V>,
    key: String,
}

impl<'a, V> Entry<'a, V> {
    /// The value, inserting `make()` first if there is none.
    pub fn or_insert_with(self, make: impl FnOnce() -> V) -> &'a mut V {
        let entries = &mut self.map.entries;
        let i = match entries.binary_search_by(|(k, _)| k.as_str().cmp(&self.key)) {
            Ok(i) => i,
            Err(i) => {
                entries.insert(i, (self.key, make()));
                i
            }
        };
        &mut entries[i].1
    }

    /// The value, inserting `value` first if there is none.
    pub fn or_insert(self, value: V) -> &'a mut V {
        self.or_insert_with(|| value)
    }

    /// The value, inserting the default first if there is none.
    pub fn or_default(self) -> &'a mut V
    where
        V: Default,
    {
        self.or_insert_with(V::default)
    }
}

impl<V> FromIterator<(String, V)> for SortedMap<V> {
    /// Later pairs replace earlier ones with the same key, as in `BTreeMap`.
    fn from_iter<I: IntoIterator<Item = (String, V)>>(pairs: I) -> Self {
        let mut map = Self::new();
        map.extend(pairs);
        map
    }
}

impl<V> Extend<(String, V)> for SortedMap<V> {
    fn extend<I: IntoIterator<Item = (String, V)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl<V, const N: usize> From<[(String, V); N]> for SortedMap<V> {
    fn from(pairs: [(String, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// A set of `String`s, iterated in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SortedSet {
    items: SortedMap<()>,
}

impl SortedSet {
    /// An empty set.
    pub const fn new() -> Self {
        Self {
            items: SortedMap::new(),
        }
    }

    /// Adds `item`; whether it was new.
    pub fn insert(&mut self, item: String) -> bool {
        self.items.insert(item, ()).is_none()
    }

    /// Removes `item`; whether it was there.
    pub fn remove(&mut self, item: &str) -> bool {
        self.items.remove(item).is_some()
    }

    /// Whether `item` is in the set.
    pub fn contains(&self, item: &str) -> bool {
        self.items.contains_key(item)
    }

    /// The items in order.
    pub fn iter(&self) -> impl Iterator<Item = &String> {
        self.items.keys()
    }

    /// How many items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Removes every item.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Removes and returns the greatest item.
    pub fn pop_last(&mut self) -> Option<String> {
        self.items.pop_last().map(|(item, ())| item)
    }
}

impl FromIterator<String> for SortedSet {
    fn from_iter<I: IntoIterator<Item = String>>(items: I) -> Self {
        let mut set = Self::new();
        set.extend(items);
        set
    }
}

impl Extend<String> for SortedSet {
    fn extend<I: IntoIterator<Item = String>>(&mut self, items: I) {
        for item in items {
            self.insert(item);
        }
    }
}

impl<const N: usize> From<[String; N]> for SortedSet {
    fn from(items: [String; N]) -> Self {
        items.into_iter().collect()
    }
}

impl IntoIterator for SortedSet {
    type Item = String;
    type IntoIter = std::iter::Map<std::vec::IntoIter<(String, ())>, fn((String, ())) -> String>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.entries.into_iter().map(|(item, ())| item)
    }
}

impl<'a> IntoIterator for &'a SortedSet {
    type Item = &'a String;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (String, ())>, fn(&'a (String, ())) -> &'a String>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.entries.iter().map(|(item, ())| item)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    /// A tiny deterministic generator (the core has no rand).
    fn keys(seed: u64, n: usize) -> Vec<String> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                format!("k{}", (x >> 33) % 23)
            })
            .collect()
    }

    #[test]
    fn the_map_answers_as_a_btree_map_does() {
        for seed in 0..200 {
            let mut ours = SortedMap::new();
            let mut theirs = BTreeMap::new();
            for (step, key) in keys(seed, 40).into_iter().enumerate() {
                match step % 4 {
                    0 | 1 => assert_eq!(ours.insert(key.clone(), step), theirs.insert(key, step)),
                    2 => assert_eq!(ours.remove(&key), theirs.remove(&key)),
                    _ => {
                        *ours.entry(key.clone()).or_default() += 1;
                        *theirs.entry(key).or_default() += 1;
                    }
                }
                assert!(ours.iter().eq(theirs.iter()), "seed {seed}");
                assert_eq!(ours.len(), theirs.len());
            }
            for key in keys(seed + 1, 10) {
                assert_eq!(ours.get(&key), theirs.get(&key));
                assert_eq!(ours.contains_key(&key), theirs.contains_key(&key));
            }
            assert_eq!(ours.pop_last(), theirs.pop_last());
        }
    }

    #[test]
    fn the_set_answers_as_a_btree_set_does() {
        for seed in 0..200 {
            let mut ours = SortedSet::new();
            let mut theirs = BTreeSet::new();
            for (step, key) in keys(seed, 30).into_iter().enumerate() {
                if step % 3 == 2 {
                    assert_eq!(ours.remove(&key), theirs.remove(&key));
                } else {
                    assert_eq!(ours.insert(key.clone()), theirs.insert(key));
                }
                assert!(ours.iter().eq(theirs.iter()), "seed {seed}");
            }
            assert_eq!(ours.pop_last(), theirs.pop_last());
            assert!(ours.into_iter().eq(theirs));
        }
    }

    #[test]
    fn later_pairs_replace_earlier_ones_when_collected() {
        let map: SortedMap<u8> = [("b".to_owned(), 1), ("a".to_owned(), 2), ("b".to_owned(), 3)].into();
        assert_eq!(
            map.iter().collect::<Vec<_>>(),
            [(&"a".to_owned(), &2), (&"b".to_owned(), &3)]
        );
    }
}
