//! [`Registry`]: a small concurrent map for registries that no lookup path reads
//! (entities by id; read by a leaf's promotion, `leaf.rs`). It is `dashmap::DashMap` normally and a loom mutex around a `HashMap`
//! under `cfg(loom)`: a real `DashMap` shard guard held across a loom operation deadlocks
//! the model (loom runs every model thread on one OS thread).
//!
//! The API is kept minimal so the two implementations cannot drift.

#[cfg(loom)]
use std::collections::HashMap;
use std::hash::Hash;

/// A concurrent map with insert-if-absent, get, remove and snapshot-iteration.
pub(crate) struct Registry<K, V> {
    #[cfg(not(loom))]
    map: dashmap::DashMap<K, V>,
    #[cfg(loom)]
    map: loom::sync::Mutex<HashMap<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Registry<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            #[cfg(not(loom))]
            map: dashmap::DashMap::new(),
            #[cfg(loom)]
            map: loom::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Inserts `make()` under `key` unless the key is present; returns the new value, or
    /// `Err(existing)`.
    pub(crate) fn try_insert_with(&self, key: K, make: impl FnOnce() -> V) -> Result<V, V> {
        #[cfg(not(loom))]
        {
            match self.map.entry(key) {
                dashmap::mapref::entry::Entry::Occupied(e) => Err(e.get().clone()),
                dashmap::mapref::entry::Entry::Vacant(e) => {
                    let v = make();
                    e.insert(v.clone());
                    Ok(v)
                }
            }
        }
        #[cfg(loom)]
        {
            let mut m = self.map.lock().unwrap();
            if let Some(v) = m.get(&key) {
                return Err(v.clone());
            }
            let v = make();
            m.insert(key, v.clone());
            Ok(v)
        }
    }

    /// The value under `key` (a clone).
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        #[cfg(not(loom))]
        {
            self.map.get(key).map(|e| e.value().clone())
        }
        #[cfg(loom)]
        {
            self.map.lock().unwrap().get(key).cloned()
        }
    }

    /// Removes `key` if `pred(value)` holds.
    pub(crate) fn remove_if(&self, key: &K, pred: impl FnOnce(&V) -> bool) -> Option<V> {
        #[cfg(not(loom))]
        {
            self.map.remove_if(key, |_, v| pred(v)).map(|(_, v)| v)
        }
        #[cfg(loom)]
        {
            let mut m = self.map.lock().unwrap();
            if m.get(key).is_some_and(pred) {
                m.remove(key)
            } else {
                None
            }
        }
    }

    /// A point-in-time copy of the values (entries inserted or removed meanwhile may or
    /// may not appear).
    pub(crate) fn values(&self) -> Vec<V> {
        #[cfg(not(loom))]
        {
            self.map.iter().map(|e| e.value().clone()).collect()
        }
        #[cfg(loom)]
        {
            self.map.lock().unwrap().values().cloned().collect()
        }
    }
}
