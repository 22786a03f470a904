//! Which webhook events a presence write observed. Only the hub whose Redis script saw a
//! transition emits it — the script's answer says "this user's first connection anywhere" (or
//! last), and the room's user count after it — so each event is emitted once for the cluster,
//! however many hubs the room spans: `room_occupied` when the first user came (count now 1),
//! `room_vacated` when the last left (count now 0), `member_added` / `member_removed` for the
//! user. A dead hub's users are removed by the one survivor that buries it, which emits theirs.

use crate::hub::room_users::PresenceChange;
use crate::webhooks::{Event, EventName, Webhooks};

/// What the script said of `change`: `event` 1 the user's first connection anywhere, -1 its
/// last, 0 neither; `users` the room's users after it. In the order a watcher would tell them:
/// the room fills before its first member is added, and empties after its last is removed.
pub(super) fn emit(webhooks: &Webhooks, change: &PresenceChange, event: i64, users: i64) {
    let member = |name| {
        Event::member(
            name,
            change.room.as_str(),
            &change.user,
            change.name.as_deref(),
        )
    };
    match event {
        1 => {
            if users == 1 {
                webhooks.emit(Event::room(EventName::RoomOccupied, change.room.as_str()));
            }
            webhooks.emit(member(EventName::MemberAdded));
        }
        -1 => {
            webhooks.emit(member(EventName::MemberRemoved));
            if users == 0 {
                webhooks.emit(Event::room(EventName::RoomVacated, change.room.as_str()));
            }
        }
        _ => {}
    }
}

/// A dead hub's entries of one room removed: its users left with no connection anywhere, and the
/// room's users after (0: the dead hub held the room's last).
pub(super) fn emit_reaped(webhooks: &Webhooks, leaves: &[PresenceChange], users: i64) {
    let Some(last) = leaves.len().checked_sub(1) else {
        return;
    };
    for (i, change) in leaves.iter().enumerate() {
        // Only the last leave can empty the room.
        let after = if i == last { users } else { users.max(1) };
        emit(webhooks, change, -1, after);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tokio::sync::mpsc;

    use super::*;
    use crate::protocol::Room;

    fn change(user: &str) -> PresenceChange {
        PresenceChange {
            room: Room::parse("lobby").expect("room"),
            user: Arc::from(user),
            name: Some(Arc::from("Ana")),
            count: 1,
            events: true,
        }
    }

    fn names(rx: &mut mpsc::Receiver<Event>) -> Vec<(EventName, Option<String>)> {
        let mut out = Vec::new();
        while let Ok(e) = rx.try_recv() {
            out.push((e.name, e.user.map(|u| u.id)));
        }
        out
    }

    #[test]
    fn the_room_fills_before_its_first_member_and_empties_after_its_last() {
        let (tx, mut rx) = mpsc::channel(16);
        let hooks = Webhooks::On {
            tx,
            counters: Default::default(),
        };
        use EventName::*;
        emit(&hooks, &change("u1"), 1, 1);
        emit(&hooks, &change("u2"), 1, 2);
        emit(&hooks, &change("u2"), 0, 2);
        emit(&hooks, &change("u1"), -1, 1);
        emit(&hooks, &change("u2"), -1, 0);
        let u = |s: &str| Some(s.to_owned());
        assert_eq!(
            names(&mut rx),
            vec![
                (RoomOccupied, None),
                (MemberAdded, u("u1")),
                (MemberAdded, u("u2")),
                (MemberRemoved, u("u1")),
                (MemberRemoved, u("u2")),
                (RoomVacated, None),
            ]
        );
        emit_reaped(&hooks, &[change("u3"), change("u4")], 0);
        emit_reaped(&hooks, &[], 0);
        assert_eq!(
            names(&mut rx),
            vec![
                (MemberRemoved, u("u3")),
                (MemberRemoved, u("u4")),
                (RoomVacated, None),
            ]
        );
    }
}
