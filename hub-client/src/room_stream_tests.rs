//! Unit tests of the room stream: order, copies, holes, epochs, and the pause when the
//! application's buffer is full.

use super::*;
use crate::message::User;

fn m(epoch: &str, offset: u64) -> Message {
    Message {
        id: format!("{epoch}-{offset}"),
        room: "r".into(),
        from: "c".into(),
        user: User {
            id: "u".into(),
            name: None,
        },
        content: format!("{offset}"),
        timestamp: String::new(),
        hub: String::new(),
        epoch: Some(epoch.into()),
        offset: Some(offset),
        replayed: false,
        raw: "{}".into(),
    }
}

fn replayed(epoch: &str, offset: u64) -> Message {
    Message {
        replayed: true,
        ..m(epoch, offset)
    }
}

/// Collects what the stream delivers; refuses once `room` messages are taken.
struct Out {
    got: Vec<String>,
    room: usize,
}

impl Out {
    fn new() -> Self {
        Out {
            got: Vec::new(),
            room: usize::MAX,
        }
    }

    fn take(&mut self) -> impl FnMut(Message) -> bool + '_ {
        |m: Message| {
            if self.got.len() >= self.room {
                return false;
            }
            self.got.push(m.id);
            true
        }
    }
}

fn started(epoch: &str, offset: u64) -> RoomStream {
    let mut s = RoomStream::new(100);
    let mut out = Out::new();
    s.start(Some(epoch), Some(offset), &mut out.take());
    s
}

#[test]
fn in_order_once_copies_dropped() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    for o in [1, 2, 2, 1, 3] {
        assert_eq!(s.receive(m("e", o), &mut out.take()), Outcome::Nothing);
    }
    assert_eq!(out.got, ["e-1", "e-2", "e-3"]);
    assert_eq!(
        s.position(),
        Some(Position {
            epoch: "e".into(),
            offset: 3
        })
    );
}

#[test]
fn a_hole_holds_later_frames_until_filled() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    assert_eq!(s.receive(m("e", 1), &mut out.take()), Outcome::Nothing);
    assert_eq!(s.receive(m("e", 3), &mut out.take()), Outcome::Gap);
    assert_eq!(s.receive(m("e", 4), &mut out.take()), Outcome::Gap);
    assert!(s.has_gap());
    assert_eq!(s.receive(m("e", 2), &mut out.take()), Outcome::Nothing);
    assert_eq!(out.got, ["e-1", "e-2", "e-3", "e-4"]);
    assert!(!s.has_gap());
}

#[test]
fn an_ack_fills_the_hole_of_an_own_message() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    s.receive(m("e", 2), &mut out.take());
    s.own_stored(1, &mut out.take());
    assert_eq!(out.got, ["e-2"]);
    // An ack past the next offset leaves a placeholder that a later fill passes over.
    s.own_stored(4, &mut out.take());
    s.receive(m("e", 5), &mut out.take());
    s.receive(m("e", 3), &mut out.take());
    assert_eq!(out.got, ["e-2", "e-3", "e-5"]);
    assert_eq!(s.position().map(|p| p.offset), Some(5));
}

#[test]
fn the_first_join_delivers_its_replay_and_what_follows() {
    let mut s = RoomStream::new(100);
    let mut out = Out::new();
    // Before `joined`: a live frame said before the subscription, the replay, a later live one.
    for f in [m("e", 5), replayed("e", 4), replayed("e", 5), m("e", 6)] {
        assert_eq!(s.receive(f, &mut out.take()), Outcome::Nothing);
    }
    assert!(out.got.is_empty());
    assert_eq!(
        s.start(Some("e"), Some(5), &mut out.take()),
        Outcome::Nothing
    );
    assert_eq!(out.got, ["e-4", "e-5", "e-6"]);
}

#[test]
fn a_join_without_history_delivers_unordered_then_a_stored_message_gives_a_position() {
    let mut s = RoomStream::new(100);
    let mut out = Out::new();
    s.start(None, None, &mut out.take());
    assert_eq!(s.position(), None);
    s.receive(m("e", 7), &mut out.take());
    s.receive(m("e", 8), &mut out.take());
    assert_eq!(out.got, ["e-7", "e-8"]);
    assert_eq!(s.position().map(|p| p.offset), Some(8));
}

#[test]
fn a_new_epoch_waits_for_the_rejoin_then_follows() {
    let mut s = started("old", 0);
    let mut out = Out::new();
    s.receive(m("old", 1), &mut out.take());
    assert_eq!(s.receive(m("new", 2), &mut out.take()), Outcome::Epoch);
    assert_eq!(s.receive(m("new", 1), &mut out.take()), Outcome::Epoch);
    // The re-join says epoch_changed: the new epoch is read from its start.
    assert_eq!(s.jump("new", Some(0), &mut out.take()), Outcome::Nothing);
    assert_eq!(out.got, ["old-1", "new-1", "new-2"]);
    assert_eq!(s.epoch(), Some("new"));
}

#[test]
fn a_failed_recovery_delivers_what_is_in_hand_and_moves_on() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    s.receive(m("e", 1), &mut out.take());
    s.receive(m("e", 4), &mut out.take());
    s.receive(m("e", 9), &mut out.take());
    // too_old: the room continues from 6; 4 (in hand) goes out, 9 stays held behind 7-8.
    assert_eq!(s.jump("e", Some(6), &mut out.take()), Outcome::Gap);
    assert_eq!(out.got, ["e-1", "e-4"]);
    assert_eq!(s.position().map(|p| p.offset), Some(6));
}

#[test]
fn recovered_short_sees_a_hole_the_replay_left() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    s.receive(m("e", 1), &mut out.take());
    assert!(s.recovered_short(Some("e"), Some(3)));
    assert!(!s.recovered_short(Some("e"), Some(1)));
    assert!(!s.recovered_short(Some("other"), Some(3)));
}

#[test]
fn too_much_held_overflows_and_skipping_reports_the_lost_offsets() {
    let mut s = RoomStream::new(3);
    let mut out = Out::new();
    s.start(Some("e"), Some(0), &mut out.take());
    for o in [3, 4, 5] {
        assert_eq!(s.receive(m("e", o), &mut out.take()), Outcome::Gap);
    }
    assert_eq!(s.receive(m("e", 6), &mut out.take()), Outcome::Overflow);
    assert_eq!(s.skip_holes(&mut out.take()), 2);
    assert_eq!(out.got, ["e-3", "e-4", "e-5", "e-6"]);
    assert!(!s.has_gap());
}

#[test]
fn a_refusal_pauses_before_the_refused_message_and_drops_what_follows() {
    let mut s = started("e", 0);
    let mut out = Out::new();
    out.room = 2;
    s.receive(m("e", 1), &mut out.take());
    s.receive(m("e", 3), &mut out.take());
    s.receive(m("e", 2), &mut out.take()); // 2 taken, 3 refused
    assert!(s.paused());
    assert_eq!(s.position().map(|p| p.offset), Some(2));
    s.receive(m("e", 4), &mut out.take());
    assert!(!s.has_gap(), "nothing held while paused");
    // The application caught up; the re-join's replay brings 3 and 4.
    out.room = usize::MAX;
    s.resume();
    s.receive(replayed("e", 3), &mut out.take());
    s.receive(replayed("e", 4), &mut out.take());
    assert_eq!(out.got, ["e-1", "e-2", "e-3", "e-4"]);
}
