//! Unit tests of the outbox: order, window, acks, errors, the in-doubt rule and timeouts.

use super::*;
use crate::message::User;

struct FakeWire {
    generation: u64,
    sent: Vec<String>,
    open: bool,
}

impl Wire for FakeWire {
    fn generation(&self) -> u64 {
        self.generation
    }
    fn client_id(&self) -> &str {
        "c1"
    }
    fn send(&mut self, text: String) -> bool {
        if self.open {
            self.sent.push(text);
        }
        self.open
    }
    fn pace(&mut self, _now: Instant) -> bool {
        true
    }
    fn pace_wait(&mut self, _now: Instant) -> Duration {
        Duration::ZERO
    }
}

/// A connected wire of that connection generation, recording what is sent.
fn open_wire(generation: u64) -> FakeWire {
    FakeWire {
        generation,
        sent: vec![],
        open: true,
    }
}

fn outbox(window: usize) -> Outbox {
    Outbox::new(
        OutboxOptions {
            publish_timeout: Duration::from_secs(15),
            resend_after: Duration::from_secs(5),
            window,
            max_message_bytes: 1000,
        },
        Arc::new(AtomicUsize::new(0)),
    )
}

fn publish(o: &mut Outbox, seq: u64, content: &str) -> oneshot::Receiver<Result<Ack, HubError>> {
    let (tx, rx) = oneshot::channel();
    o.queued.fetch_add(1, Ordering::AcqRel);
    o.publish(seq, "r", content.to_owned(), tx, Instant::now());
    rx
}

fn frame(text: &str) -> Inbound {
    Inbound::parse(text).expect("frame")
}

fn stored(content: &str, offset: u64, from: &str) -> Message {
    Message {
        id: format!("id-{content}"),
        room: "r".into(),
        from: from.into(),
        user: User {
            id: "u".into(),
            name: None,
        },
        content: content.into(),
        timestamp: String::new(),
        hub: String::new(),
        epoch: Some("e".into()),
        offset: Some(offset),
        replayed: true,
        raw: "{}".into(),
    }
}

fn refs(wire: &FakeWire) -> Vec<String> {
    wire.sent
        .iter()
        .map(|t| serde_json::from_str::<serde_json::Value>(t).expect("json")["ref"].to_string())
        .collect()
}

#[test]
fn sent_in_call_order_within_the_window_and_settled_by_acks() {
    let mut o = outbox(2);
    let mut wire = open_wire(1);
    let mut rx1 = publish(&mut o, 1, "a");
    let _rx2 = publish(&mut o, 2, "b");
    let _rx3 = publish(&mut o, 3, "c");
    o.pump(&mut wire, &|_| true, Instant::now());
    assert_eq!(refs(&wire), [r#""p1.1""#, r#""p2.1""#]);
    let s = o
        .on_ack(
            &frame(r#"{"type":"ack","ref":"p1.1","id":"m1","offset":7}"#),
            1,
        )
        .expect("stored");
    assert_eq!((s.room.as_str(), s.offset), ("r", 7));
    assert_eq!(
        rx1.try_recv().expect("answered"),
        Ok(Ack {
            id: "m1".into(),
            offset: Some(7)
        })
    );
    o.pump(&mut wire, &|_| true, Instant::now());
    assert_eq!(refs(&wire).len(), 3);
    assert_eq!(o.queued.load(Ordering::Acquire), 2);
}

#[test]
fn nothing_goes_to_a_room_not_joined() {
    let mut o = outbox(8);
    let mut wire = open_wire(1);
    let _rx = publish(&mut o, 1, "a");
    o.pump(&mut wire, &|_| false, Instant::now());
    assert!(wire.sent.is_empty());
}

#[test]
fn an_error_with_the_ref_fails_it_as_not_stored() {
    let mut o = outbox(8);
    let mut wire = open_wire(1);
    let mut rx = publish(&mut o, 1, "a");
    o.pump(&mut wire, &|_| true, Instant::now());
    o.on_error(
        &frame(r#"{"type":"error","ref":"p1.1","code":"forbidden","message":"no"}"#),
        1,
    );
    let err = rx.try_recv().expect("answered").expect_err("failed");
    assert_eq!(err.code().as_str(), "forbidden");
    assert_eq!(err.maybe_stored(), Some(false));
}

#[test]
fn in_doubt_found_in_the_replay_is_settled_with_the_stored_id_and_not_sent_again() {
    let mut o = outbox(8);
    let mut wire = open_wire(1);
    let mut rx1 = publish(&mut o, 1, "same");
    let mut rx2 = publish(&mut o, 2, "same");
    o.pump(&mut wire, &|_| true, Instant::now());
    o.connection_lost();
    assert!(o.in_doubt("r"));
    // The replay shows the first one stored (same client id, room, content): it is the earlier.
    o.match_stored("r", &stored("same", 9, "c1"));
    assert_eq!(
        rx1.try_recv().expect("answered").expect("ok").offset,
        Some(9)
    );
    assert!(rx2.try_recv().is_err(), "the second still waits");
    // Another client's message with the same content settles nothing.
    o.match_stored("r", &stored("same", 10, "other"));
    assert!(rx2.try_recv().is_err());
}

#[test]
fn in_doubt_not_in_a_complete_late_enough_read_is_sent_again() {
    let mut o = outbox(8);
    let t0 = Instant::now();
    let mut wire = open_wire(1);
    let _rx = publish(&mut o, 1, "a");
    o.pump(&mut wire, &|_| true, t0);
    o.connection_lost();
    // A read right away cannot tell yet: probe later.
    let probe = o.after_read("r", true, t0 + Duration::from_secs(1), false);
    assert_eq!(probe, Some(t0 + Duration::from_secs(5)));
    assert!(o.in_doubt("r"));
    // Read after resend_after, still not there: sent again with a new ref.
    assert_eq!(
        o.after_read("r", true, t0 + Duration::from_secs(6), false),
        None
    );
    let mut wire2 = open_wire(2);
    o.pump(&mut wire2, &|_| true, t0 + Duration::from_secs(6));
    assert_eq!(refs(&wire2), [r#""p1.2""#]);
}

#[test]
fn in_doubt_when_the_history_was_lost_fails_as_unknown() {
    let mut o = outbox(8);
    let mut wire = open_wire(1);
    let mut rx = publish(&mut o, 1, "a");
    o.pump(&mut wire, &|_| true, Instant::now());
    o.connection_lost();
    o.after_read("r", false, Instant::now(), true);
    let err = rx.try_recv().expect("answered").expect_err("failed");
    assert_eq!(err.code(), &ErrorCode::Unknown);
    assert_eq!(err.maybe_stored(), Some(true));
}

#[test]
fn a_timed_out_publish_stored_later_does_not_settle_a_newer_one() {
    let mut o = outbox(8);
    let mut wire = open_wire(1);
    let mut rx1 = publish(&mut o, 1, "x");
    o.pump(&mut wire, &|_| true, Instant::now());
    o.expire(1);
    let err = rx1.try_recv().expect("answered").expect_err("timeout");
    assert_eq!(
        (err.code(), err.maybe_stored()),
        (&ErrorCode::Timeout, Some(true))
    );
    let mut rx2 = publish(&mut o, 2, "x");
    o.pump(&mut wire, &|_| true, Instant::now());
    o.connection_lost();
    o.match_stored("r", &stored("x", 3, "c1")); // the first one's copy
    assert!(
        rx2.try_recv().is_err(),
        "the newer publish is not settled by it"
    );
}

#[test]
fn too_large_and_empty_are_refused_at_once() {
    let mut o = outbox(8);
    let mut rx = publish(&mut o, 1, &"x".repeat(2000));
    let err = rx.try_recv().expect("answered").expect_err("too large");
    assert_eq!(err.code(), &ErrorCode::TooLarge);
    let mut rx = publish(&mut o, 2, "");
    let err = rx.try_recv().expect("answered").expect_err("empty");
    assert_eq!(err.code(), &ErrorCode::BadArgument);
    assert_eq!(o.queued.load(Ordering::Acquire), 0);
}
