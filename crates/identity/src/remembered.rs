//! Remembered results of signature work: a verified token's claims, an opened session id, a
//! signed assertion still fresh enough to send again. Each is keyed by a SHA-256 of what it was
//! computed from (never the token itself, so memory holds no usable secret as a key) and
//! stands until its own deadline. Bounded: when full, expired entries go, then everything.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The key of a remembered result: SHA-256 over its inputs, each length-prefixed so that no two
/// different input lists share a key.
pub type RememberKey = [u8; 32];

/// Results remembered until their own deadlines.
pub struct Remembered<V> {
    entries: Mutex<HashMap<RememberKey, (V, Instant)>>,
    max: usize,
}

impl<V: Clone> Remembered<V> {
    /// Holds at most `max` results.
    pub fn new(max: usize) -> Remembered<V> {
        Remembered {
            entries: Mutex::new(HashMap::new()),
            max: max.max(1),
        }
    }

    /// The key for results computed from `parts`.
    pub fn key(parts: &[&[u8]]) -> RememberKey {
        let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in parts {
            context.update(&(part.len() as u64).to_be_bytes());
            context.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(context.finish().as_ref());
        key
    }

    /// The result remembered under `key`, if its deadline has not passed.
    pub fn get(&self, key: &RememberKey) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(value, _)| value.clone())
    }

    /// Remembers `value` under `key` for `lasts` from now.
    pub fn insert(&self, key: RememberKey, value: V, lasts: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= self.max && !entries.contains_key(&key) {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + lasts));
    }

    /// The result under `key`, computing and remembering it for the duration `compute` returns
    /// when none stands. Errors are not remembered.
    pub fn get_or_try<E>(
        &self,
        key: RememberKey,
        compute: impl FnOnce() -> Result<(V, Duration), E>,
    ) -> Result<V, E> {
        if let Some(value) = self.get(&key) {
            return Ok(value);
        }
        let (value, lasts) = compute()?;
        if !lasts.is_zero() {
            self.insert(key, value.clone(), lasts);
        }
        Ok(value)
    }

    /// How many results are held (expired ones included until they are swept).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes what is remembered under every key (tests age entries with it).
    #[cfg(test)]
    pub(crate) fn update_all(&self, mut change: impl FnMut(&mut V, &mut Instant)) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (value, until) in entries.values_mut() {
            change(value, until);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_apart_inputs_that_concatenate_alike() {
        assert_ne!(
            Remembered::<u8>::key(&[b"ab", b"c"]),
            Remembered::<u8>::key(&[b"a", b"bc"])
        );
        assert_eq!(
            Remembered::<u8>::key(&[b"a", b"bc"]),
            Remembered::<u8>::key(&[b"a", b"bc"])
        );
    }

    #[test]
    fn a_result_stands_until_its_deadline_and_the_memory_is_bounded() {
        let memory = Remembered::new(2);
        let (a, b, c) = (
            Remembered::<u32>::key(&[b"a"]),
            Remembered::<u32>::key(&[b"b"]),
            Remembered::<u32>::key(&[b"c"]),
        );
        memory.insert(a, 1, Duration::from_secs(60));
        memory.insert(b, 2, Duration::ZERO);
        assert_eq!(memory.get(&a), Some(1));
        assert_eq!(memory.get(&b), None, "past its deadline");
        // Full: the expired entry makes room.
        memory.insert(c, 3, Duration::from_secs(60));
        assert_eq!(memory.len(), 2);
        assert_eq!((memory.get(&a), memory.get(&c)), (Some(1), Some(3)));
        // Full of live entries: everything goes.
        memory.insert(b, 4, Duration::from_secs(60));
        assert_eq!(memory.len(), 1);
        assert_eq!(memory.get(&b), Some(4));
    }

    #[test]
    fn computed_results_are_remembered_and_errors_are_not() {
        let memory = Remembered::new(10);
        let key = Remembered::<u32>::key(&[b"k"]);
        let mut runs = 0;
        let mut compute = |ok: bool| {
            runs += 1;
            if ok {
                Ok((7, Duration::from_secs(60)))
            } else {
                Err("no")
            }
        };
        assert_eq!(memory.get_or_try(key, || compute(false)), Err("no"));
        assert_eq!(memory.get_or_try(key, || compute(true)), Ok(7));
        assert_eq!(memory.get_or_try(key, || compute(true)), Ok(7));
        assert_eq!(runs, 2);
    }
}
