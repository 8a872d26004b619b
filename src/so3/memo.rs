//! Per-process caches of tables that are pure functions of their degrees: Clebsch–Gordan
//! coefficients, product tables, grid and Fourier plans. Building one takes milliseconds
//! (tens for a Fourier plan at L = 10), so no call should pay it twice.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

/// A table per key, built on first use and shared after.
pub(crate) struct Memo<K, V>(OnceLock<Mutex<HashMap<K, Arc<V>>>>);

impl<K: Eq + Hash, V> Memo<K, V> {
    pub(crate) const fn new() -> Self {
        Memo(OnceLock::new())
    }

    /// The table of `key`, built by `build` if no call has built it yet. Built outside the
    /// lock, so that tables of other keys are not held up; two threads racing on one key both
    /// build it and the first one stored wins.
    pub(crate) fn get_or_build(&self, key: K, build: impl FnOnce() -> V) -> Arc<V> {
        if let Some(value) = self.lock().get(&key) {
            return value.clone();
        }
        let value = Arc::new(build());
        self.lock().entry(key).or_insert(value).clone()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<K, Arc<V>>> {
        let cache = self.0.get_or_init(Default::default);
        cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}
