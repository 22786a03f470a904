//! Admission against `max_connections`. A slot is taken when an upgrade is accepted, before the
//! socket is handed over, and given back when its session ends: connections still in the middle
//! of their upgrade count too, so a burst of connects cannot overshoot the limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, Clone)]
pub struct Slots {
    used: Arc<AtomicUsize>,
    max: usize,
}

/// One taken slot; dropping it gives the slot back.
#[derive(Debug)]
pub struct Slot(Arc<AtomicUsize>);

impl Slots {
    pub fn new(max: usize) -> Self {
        Slots {
            used: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// A slot, or `None` when all `max` are taken.
    pub fn try_take(&self) -> Option<Slot> {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.used.clone()))
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_slots_are_taken_and_a_dropped_one_comes_back() {
        let slots = Slots::new(2);
        let a = slots.try_take().expect("first");
        let _b = slots.try_take().expect("second");
        assert!(slots.try_take().is_none(), "a third slot out of two");
        drop(a);
        assert!(slots.try_take().is_some(), "the dropped slot is free again");
    }
}
