//! The hub's concerns together: delivery, membership, slow consumers, a buffered join.

use super::{ClientId, Hub, Newcomer};
use crate::error::CloseReason;
use crate::namespace::PresenceMode;
use crate::outbox::{Drain, Recipient};
use crate::protocol::{Frame, Room};

/// A client registered in `hub` (in `general`), its queue's writer end, and a handle on it.
fn client(hub: &Hub, id: &str, queue: usize) -> (ClientId, Drain, Recipient) {
    let (recipient, rx) = Recipient::new(queue, usize::MAX);
    let id: ClientId = id.into();
    let me = recipient.clone();
    hub.register(Newcomer {
        client_id: id.clone(),
        recipient,
        user: id.clone(),
        name: None,
        rooms: vec![(room("general"), EVENTS)],
    });
    (id, rx, me)
}

const EVENTS: PresenceMode = PresenceMode::Events;

fn room(name: &str) -> Room {
    Room::parse(name).expect("valid")
}

#[test]
fn delivery_reaches_members_but_not_the_sender_or_other_rooms() {
    let hub = Hub::new("h".into(), 10);
    let (a, mut rx_a, _) = client(&hub, "a", 8);
    let (b, mut rx_b, _) = client(&hub, "b", 8);
    let (c, mut rx_c, _) = client(&hub, "c", 8);
    hub.join(&b, &room("r"), EVENTS).expect("join");
    hub.join(&a, &room("r"), EVENTS).expect("join");
    hub.leave(&c, &room("general")).expect("leave");

    let frame = Frame::pong();
    assert_eq!(hub.deliver(&room("r"), &frame, Some(&a)), 1);
    assert_eq!(rx_b.try_recv(), Some(frame.clone()));
    assert!(rx_a.try_recv().is_none());
    assert!(rx_c.try_recv().is_none());
    assert_eq!(hub.deliver_all(&frame, Some(&a)), 2);
    let _ = c;
}

#[test]
fn rooms_appear_and_disappear_with_their_members() {
    let hub = Hub::new("h".into(), 10);
    let (a, _rx, _) = client(&hub, "a", 8);
    assert!(
        hub.join(&a, &room("x"), EVENTS).expect("join"),
        "first member"
    );
    assert!(
        !hub.join(&a, &room("x"), EVENTS).expect("join"),
        "joining twice is harmless"
    );
    assert!(hub.local_rooms().contains(&room("x")));
    hub.leave(&a, &room("x")).expect("leave");
    assert!(!hub.local_rooms().contains(&room("x")));
    assert_eq!(hub.leave(&a, &room("x")).unwrap_err().code(), "not_member");
    hub.remove(&a);
    assert_eq!(hub.connections(), 0);
    assert_eq!(hub.room_count(), 0);
}

#[test]
fn a_full_queue_kicks_the_slow_consumer_only() {
    let hub = Hub::new("h".into(), 10);
    let (_slow, _rx_slow, slow) = client(&hub, "slow", 1);
    let (_fast, mut rx_fast, fast) = client(&hub, "fast", 8);
    let frame = Frame::pong();
    hub.deliver(&room("general"), &frame, None);
    rx_fast.try_recv().expect("fast got the first");
    hub.deliver(&room("general"), &frame, None);
    assert_eq!(slow.kick.reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(fast.kick.reason(), None);
    assert!(
        rx_fast.try_recv().is_some(),
        "the fast client is not held back"
    );
}

#[test]
fn a_buffered_join_settles_without_gap_or_duplicate_even_when_the_backlog_comes_late() {
    let hub = Hub::new("h".into(), 10);
    let (a, mut rx, me) = client(&hub, "a", 16);
    let r = room("r");
    let stored = |o: u64| Frame::from_stored(format!("{{\"offset\":{o}}}"), Some(o));
    let (via, mut waiting) = me.waiting_buffer();
    hub.join_via(&a, &r, Some(via), EVENTS).expect("join");
    // Live while the history is read: 4 and 5 (the replay will cover up to 5), then 6.
    for o in [4, 5, 6] {
        hub.deliver(&r, &stored(o), None);
    }
    assert!(
        rx.try_recv().is_none(),
        "nothing reaches the client before its replay"
    );
    hub.settle(&a, &r, &mut waiting, Some(5), |_| false);
    assert_eq!(rx.try_recv().and_then(|f| f.offset()), Some(6));
    // The subscriber's backlog: 5 again (skipped), then 7 and 8 pass.
    for o in [5, 7, 8] {
        hub.deliver(&r, &stored(o), None);
    }
    let got: Vec<_> = std::iter::from_fn(|| rx.try_recv())
        .filter_map(|f| f.offset())
        .collect();
    assert_eq!(got, vec![7, 8]);
    // Once past, a new epoch's low offsets are not skipped.
    hub.deliver(&r, &stored(1), None);
    assert_eq!(rx.try_recv().and_then(|f| f.offset()), Some(1));
}

/// A message delivered late, without offset, into a joining member's buffer, while the join's
/// history read already found it stored: the replay has it, so settling drops the late copy (the
/// client would get it twice). One the replay did not have still goes.
#[test]
fn a_late_copy_the_replay_already_had_is_dropped_when_the_join_settles() {
    let hub = Hub::new("h".into(), 10);
    let (a, mut rx, me) = client(&hub, "a", 16);
    let r = room("r");
    let (via, mut waiting) = me.waiting_buffer();
    hub.join_via(&a, &r, Some(via), EVENTS).expect("join");
    let late = |id: &str| Frame::from_stored(format!(r#"{{"type":"message","id":"{id}"}}"#), None);
    let mark = hub.seat_mark();
    hub.deliver_late(&r, &late("m1"), &"someone".into(), mark, &[]);
    hub.deliver_late(&r, &late("m2"), &"someone".into(), mark, &[]);
    let replay = [Frame::from_stored(
        r#"{"offset":7,"type":"message","id":"m1"}"#.to_owned(),
        Some(7),
    )];
    let replayed = |f: &Frame| {
        let id = f.message_id();
        replay.iter().any(|r| r.message_id() == id)
    };
    hub.settle(&a, &r, &mut waiting, Some(7), replayed);
    let got: Vec<_> = std::iter::from_fn(|| rx.try_recv())
        .filter_map(|f| f.message_id())
        .collect();
    assert_eq!(got, ["m2"]);
}

/// A member in the room all along (as in its personal room after a reconnect) joins again with
/// `since`: the subscriber's late copies of what the replay had are skipped, newer ones pass.
#[test]
fn a_member_joining_again_gets_no_late_copy_of_its_replay() {
    let hub = Hub::new("h".into(), 10);
    let (a, mut rx, _) = client(&hub, "a", 16);
    let r = room("general");
    assert_eq!(
        hub.join_via(&a, &r, None, EVENTS).expect("join"),
        super::Joined::AlreadyMember
    );
    hub.skip_replayed(&a, &r, 7);
    let live = |offset: u64| {
        Frame::from_stored(
            format!(r#"{{"offset":{offset},"type":"message","id":"m{offset}"}}"#),
            Some(offset),
        )
    };
    for offset in [6, 7, 8, 9] {
        hub.deliver(&r, &live(offset), None);
    }
    let got: Vec<_> = std::iter::from_fn(|| rx.try_recv())
        .filter_map(|f| f.message_id())
        .collect();
    assert_eq!(got, ["m8", "m9"]);
}

#[test]
fn the_room_limit_per_client_holds() {
    let hub = Hub::new("h".into(), 2);
    let (a, _rx, _) = client(&hub, "a", 8);
    hub.join(&a, &room("one"), EVENTS).expect("second room");
    assert_eq!(
        hub.join(&a, &room("two"), EVENTS).unwrap_err().code(),
        "too_many_rooms"
    );
}

#[test]
fn a_late_delivery_skips_members_seated_after_the_message_was_sent() {
    let hub = Hub::new("h".into(), 10);
    let (early, mut rx_early, _) = client(&hub, "early", 8);
    let (sender, _rx_sender, _) = client(&hub, "sender", 8);
    let r = room("r");
    hub.join(&early, &r, EVENTS).expect("join");
    hub.join(&sender, &r, EVENTS).expect("join");
    let mark = hub.seat_mark();
    // Joined after the message was handed to Redis: its join's replay has the message (with its
    // offset); the late copy without offset would be a duplicate.
    let (late, mut rx_late, _) = client(&hub, "late", 8);
    hub.join(&late, &r, EVENTS).expect("join");
    let frame = Frame::pong();
    assert_eq!(hub.deliver_late(&r, &frame, &sender, mark, &[]), 1);
    assert_eq!(rx_early.try_recv(), Some(frame));
    assert!(
        rx_late.try_recv().is_none(),
        "the late joiner got the late copy"
    );
    let _ = late;
}

#[test]
fn a_newcomer_starts_in_all_its_rooms_and_only_rooms_with_presence_are_counted() {
    let hub = Hub::new("h".into(), 10);
    let (recipient, mut rx) = Recipient::new(8, usize::MAX);
    let id: ClientId = "a".into();
    hub.register(Newcomer {
        client_id: id.clone(),
        recipient,
        user: "ana".into(),
        name: None,
        rooms: vec![
            (room("general"), EVENTS),
            (room("user:ana"), PresenceMode::Off),
            (room("live:1"), PresenceMode::Quiet),
            (room("general"), EVENTS),
        ],
    });
    let mut rooms = hub.rooms_of(&id);
    rooms.sort();
    assert_eq!(rooms, [room("general"), room("live:1"), room("user:ana")]);
    let mut changed: Vec<_> = hub.take_room_changes();
    changed.sort();
    assert_eq!(
        changed,
        [
            (room("general"), true),
            (room("live:1"), true),
            (room("user:ana"), true)
        ],
        "the bridge subscribes to each new room"
    );
    let counted: Vec<_> = hub
        .presence_snapshot_by_room()
        .into_iter()
        .map(|c| (c.room.to_string(), c.events))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        counted,
        [("general".to_owned(), true), ("live:1".to_owned(), false)]
    );
    assert_eq!(hub.deliver(&room("user:ana"), &Frame::pong(), None), 1);
    assert_eq!(rx.try_recv(), Some(Frame::pong()));
    hub.remove(&id);
    assert_eq!(hub.room_count(), 0);
    assert!(hub.presence_snapshot_by_room().is_empty());
}
