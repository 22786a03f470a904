//! A bounded stack of reusable (de)compressors: without context takeover nothing survives a
//! message, so one is taken for one message and given back, and memory follows the messages
//! being (de)compressed at this moment, not the connections.

use std::sync::{Mutex, PoisonError};

#[derive(Debug)]
pub(super) struct Pool<T> {
    /// A std Mutex, held for one push or pop only (never across an await): uncontended it is a
    /// couple of atomic operations, beside microseconds of (de)compression.
    items: Mutex<Vec<T>>,
    cap: usize,
}

impl<T> Pool<T> {
    /// Keeps at most `cap` idle items; more are built when needed and dropped when given back.
    pub(super) fn new(cap: usize) -> Self {
        Pool {
            items: Mutex::new(Vec::new()),
            cap,
        }
    }

    pub(super) fn take(&self) -> Option<T> {
        // A panic while holding the lock cannot leave the Vec half-changed (push and pop are
        // whole): go on with it.
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    pub(super) fn give_back(&self, item: T) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        if items.len() < self.cap {
            items.push(item);
        }
    }

    #[cfg(test)]
    pub(super) fn idle(&self) -> usize {
        self.items
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::Pool;

    #[test]
    fn keeps_at_most_its_cap() {
        let pool = Pool::new(2);
        assert_eq!(pool.take(), None::<u8>);
        for i in 0..5 {
            pool.give_back(i);
        }
        assert_eq!(pool.idle(), 2);
        assert_eq!(
            (pool.take(), pool.take(), pool.take()),
            (Some(1), Some(0), None)
        );
    }
}
