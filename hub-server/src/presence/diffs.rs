//! Gathers the joins and leaves of one presence write into one `presence_diff` per room, rather
//! than one per user: when 10k clients reconnect at once, a room's members would otherwise each
//! get a frame per newcomer (n² frames for n members, up to `presence_events_max`), which cost
//! the hub 10 KiB of memory per idle connection in the bench. A user who comes back in the same
//! write (left, then joined again) closes the room's diff first, so the order of events is kept.

use std::collections::HashMap;

use crate::hub::room_users::PresenceChange;
use crate::protocol::Room;

/// One room's events, in order, and its user count after them.
#[derive(Debug)]
pub struct RoomDiff<'a> {
    pub room: &'a Room,
    pub joins: Vec<&'a PresenceChange>,
    pub leaves: Vec<&'a PresenceChange>,
    pub users: usize,
}

#[derive(Debug, Default)]
pub struct Diffs<'a> {
    open: Vec<RoomDiff<'a>>,
    index: HashMap<&'a Room, usize>,
    /// Diffs closed early (a user seen twice), in the order they were closed.
    done: Vec<RoomDiff<'a>>,
}

impl<'a> Diffs<'a> {
    /// Adds one event; `users` is the room's user count once it happened.
    pub fn push(&mut self, change: &'a PresenceChange, joined: bool, users: usize) {
        let at = match self.index.get(&change.room) {
            Some(&at) => at,
            None => {
                self.index.insert(&change.room, self.open.len());
                self.open.push(RoomDiff {
                    room: &change.room,
                    joins: Vec::new(),
                    leaves: Vec::new(),
                    users,
                });
                self.open.len() - 1
            }
        };
        let diff = &mut self.open[at];
        let seen = |list: &[&PresenceChange]| list.iter().any(|c| c.user == change.user);
        if seen(&diff.joins) || seen(&diff.leaves) {
            let closed = std::mem::replace(
                diff,
                RoomDiff {
                    room: &change.room,
                    joins: Vec::new(),
                    leaves: Vec::new(),
                    users,
                },
            );
            self.done.push(closed);
        }
        let diff = &mut self.open[at];
        diff.users = users;
        if joined {
            diff.joins.push(change);
        } else {
            diff.leaves.push(change);
        }
    }

    /// Every diff, in the order its first event came (those closed early first).
    pub fn finish(self) -> impl Iterator<Item = RoomDiff<'a>> {
        self.done.into_iter().chain(self.open)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn change(room: &str, user: &str, count: u32) -> PresenceChange {
        PresenceChange {
            room: Room::parse(room).expect("room"),
            user: Arc::from(user),
            name: None,
            count,
            events: true,
        }
    }

    fn users(list: &[&PresenceChange]) -> Vec<String> {
        list.iter().map(|c| c.user.to_string()).collect()
    }

    #[test]
    fn one_diff_per_room_in_order_and_a_returning_user_closes_the_first() {
        let events = [
            change("a", "u1", 1),
            change("b", "u2", 1),
            change("a", "u3", 1),
            change("a", "u4", 0),
            change("a", "u1", 0),
        ];
        let mut diffs = Diffs::default();
        diffs.push(&events[0], true, 1);
        diffs.push(&events[1], true, 1);
        diffs.push(&events[2], true, 2);
        diffs.push(&events[3], false, 1);
        diffs.push(&events[4], false, 0);
        let all: Vec<_> = diffs.finish().collect();
        let summary: Vec<_> = all
            .iter()
            .map(|d| (d.room.as_str(), users(&d.joins), users(&d.leaves), d.users))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", vec!["u1".into(), "u3".into()], vec!["u4".into()], 1),
                ("a", vec![], vec!["u1".into()], 0),
                ("b", vec!["u2".into()], vec![], 1),
            ]
        );
    }
}
