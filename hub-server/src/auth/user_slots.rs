//! `max_connections_per_user`: connections per user id on this hub. A slot is held by the session
//! and given back when it ends; a user's entry goes with their last connection, so the map holds
//! at most one entry per connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone)]
pub struct UserSlots {
    counts: Arc<Mutex<HashMap<Arc<str>, usize>>>,
    max: usize,
}

/// One connection of a user; dropping it gives the place back.
#[derive(Debug)]
pub struct UserSlot {
    counts: Arc<Mutex<HashMap<Arc<str>, usize>>>,
    user: Arc<str>,
}

impl UserSlots {
    pub fn new(max: usize) -> Self {
        UserSlots {
            counts: Arc::default(),
            max,
        }
    }

    /// A place for one more connection of `user`, or `None` when they have `max` already.
    pub fn try_take(&self, user: &Arc<str>) -> Option<UserSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(user.clone()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(UserSlot {
            counts: self.counts.clone(),
            user: user.clone(),
        })
    }

    /// Users with at least one connection.
    pub fn users(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.user) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_gets_at_most_max_and_the_entry_goes_with_the_last() {
        let slots = UserSlots::new(2);
        let ana: Arc<str> = "ana".into();
        let bob: Arc<str> = "bob".into();
        let a1 = slots.try_take(&ana).expect("first");
        let a2 = slots.try_take(&ana).expect("second");
        assert!(slots.try_take(&ana).is_none(), "a third for ana");
        let b1 = slots.try_take(&bob).expect("bob is counted apart");
        assert_eq!(slots.users(), 2);
        drop(a1);
        let _a3 = slots.try_take(&ana).expect("a freed place comes back");
        drop(a2);
        drop(b1);
        assert_eq!(slots.users(), 1, "bob's entry is gone, ana still has one");
    }
}
