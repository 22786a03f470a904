//! A set that remembers at most `max` values, forgetting the oldest first. Every set of ids the SDK
//! keeps (message ids seen per room, broadcast ids, its own client ids) is one, so none grows
//! without bound.

use std::collections::{HashSet, VecDeque};
use std::hash::Hash;

#[derive(Debug)]
pub(crate) struct BoundedSet<T> {
    max: usize,
    values: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Hash + Eq + Clone> BoundedSet<T> {
    pub(crate) fn new(max: usize) -> Self {
        BoundedSet {
            max: max.max(1),
            values: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    pub(crate) fn contains<Q>(&self, value: &Q) -> bool
    where
        T: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.values.contains(value)
    }

    /// Adds `value`; false when it was there already.
    pub(crate) fn insert(&mut self, value: T) -> bool {
        if !self.values.insert(value.clone()) {
            return false;
        }
        self.order.push_back(value);
        if self.order.len() > self.max
            && let Some(oldest) = self.order.pop_front()
        {
            self.values.remove(&oldest);
        }
        true
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.values.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_past_its_bound() {
        let mut s = BoundedSet::new(3);
        for v in ["a", "b", "c", "d"] {
            assert!(s.insert(v.to_owned()));
        }
        assert!(!s.insert("d".to_owned()));
        assert_eq!(s.len(), 3);
        assert!(!s.contains("a"));
        assert!(s.contains("b") && s.contains("d"));
    }
}
