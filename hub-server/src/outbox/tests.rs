//! The outbox's bounds, order, wake-ups and memory, without a writer task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::*;

fn numbered(n: usize) -> Frame {
    Frame::from_json(format!(r#"{{"n":{n}}}"#))
}

fn numbers(batch: &VecDeque<Frame>) -> Vec<String> {
    batch.iter().map(|f| f.as_str().to_owned()).collect()
}

/// A waker that records whether it was woken.
#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

impl Flag {
    fn woken(&self) -> bool {
        self.0.swap(false, Ordering::SeqCst)
    }
}

/// Polls the writer's end once with `flag` as its waker.
fn poll(drain: &mut Drain, flag: &Arc<Flag>) -> Poll<Option<VecDeque<Frame>>> {
    let waker = Waker::from(flag.clone());
    drain.poll_batch(&mut Context::from_waker(&waker))
}

#[test]
fn frames_come_out_in_the_order_they_were_offered_across_batches() {
    let (me, mut drain) = Recipient::new(100, usize::MAX);
    let flag = Arc::new(Flag::default());
    let mut got = Vec::new();
    for n in 0..5 {
        assert!(me.offer(&numbered(n)));
    }
    let Poll::Ready(Some(batch)) = poll(&mut drain, &flag) else {
        panic!("a batch")
    };
    got.extend(numbers(&batch));
    // Queued while the first batch is being written.
    for n in 5..9 {
        assert!(me.offer(&numbered(n)));
    }
    drain.written(batch, 0);
    let Poll::Ready(Some(batch)) = poll(&mut drain, &flag) else {
        panic!("a batch")
    };
    got.extend(numbers(&batch));
    drain.written(batch, 0);
    assert!(me.offer(&numbered(9)));
    got.extend(numbers(&drain.take_all()));
    let expected: Vec<_> = (0..10).map(|n| numbered(n).as_str().to_owned()).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_queue_full_in_frames_closes_the_client_as_a_slow_consumer() {
    let (me, _drain) = Recipient::new(2, usize::MAX);
    assert!(me.offer(&Frame::pong()));
    assert!(me.offer(&Frame::pong()));
    assert_eq!(me.kick.reason(), None, "two frames fit");
    assert!(!me.offer(&Frame::pong()), "the third is refused");
    assert_eq!(me.kick.reason(), Some(CloseReason::SlowConsumer));
}

#[test]
fn a_queue_full_in_bytes_closes_the_client_as_a_slow_consumer() {
    let len = numbered(1).as_str().len();
    let (me, mut drain) = Recipient::new(100, 2 * len);
    assert!(me.offer(&numbered(1)));
    assert!(me.offer(&numbered(2)));
    assert_eq!(me.queued_bytes(), 2 * len);
    assert_eq!(me.kick.reason(), None, "exactly at the bound");
    assert!(!me.offer(&numbered(3)), "one byte past the bound");
    assert_eq!(me.kick.reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(
        me.queued_bytes(),
        2 * len,
        "a refused frame reserves nothing"
    );
    assert_eq!(drain.take_all().len(), 2);
    assert_eq!(me.queued_bytes(), 0, "what was taken is given back");
}

#[test]
fn a_frame_larger_than_the_byte_bound_still_goes_into_an_empty_queue() {
    let (me, _drain) = Recipient::new(100, 4);
    assert!(me.offer(&numbered(1)));
    assert_eq!(me.kick.reason(), None);
    assert!(!me.offer(&numbered(2)));
    assert_eq!(me.kick.reason(), Some(CloseReason::SlowConsumer));
}

#[test]
fn a_queue_whose_writer_is_gone_refuses_without_closing_anyone() {
    let len = numbered(1).as_str().len();
    // One frame's bytes at most: the frame queued before the writer went still counts.
    let (me, drain) = Recipient::new(1, len);
    assert!(me.offer(&numbered(1)));
    drop(drain);
    assert!(!me.offer(&numbered(2)), "past the byte bound");
    assert_eq!(me.kick.reason(), None);
    let (me, drain) = Recipient::new(10, usize::MAX);
    drop(drain);
    assert!(!me.offer(&numbered(1)), "within the bounds");
    assert_eq!(me.kick.reason(), None);
    assert_eq!(me.queued_bytes(), 0, "a refused frame reserves nothing");
}

#[test]
fn a_waiting_writer_is_woken_by_the_first_offer_and_by_the_last_sender_leaving() {
    let (me, mut drain) = Recipient::new(10, usize::MAX);
    let flag = Arc::new(Flag::default());
    assert!(poll(&mut drain, &flag).is_pending());
    assert!(!flag.woken());
    assert!(me.offer(&numbered(1)));
    assert!(flag.woken(), "the offer woke the writer");
    assert!(me.offer(&numbered(2)));
    let Poll::Ready(Some(batch)) = poll(&mut drain, &flag) else {
        panic!("a batch")
    };
    assert_eq!(batch.len(), 2, "both frames in one batch");
    drain.written(batch, 0);
    assert!(poll(&mut drain, &flag).is_pending());
    let other = me.clone();
    drop(me);
    assert!(!flag.woken(), "a sender is left");
    drop(other);
    assert!(flag.woken(), "the last sender left");
    assert!(matches!(poll(&mut drain, &flag), Poll::Ready(None)));
}

#[tokio::test(start_paused = true)]
async fn a_writer_task_waiting_gets_what_is_offered() {
    let (me, mut drain) = Recipient::new(10, usize::MAX);
    let writer = tokio::spawn(async move { drain.next_batch().await.map(|b| numbers(&b)) });
    // Let the writer reach its wait.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(me.offer(&numbered(7)));
    let got = tokio::time::timeout(std::time::Duration::from_secs(5), writer)
        .await
        .expect("woken")
        .expect("writer ends");
    assert_eq!(got, Some(vec![numbered(7).as_str().to_owned()]));
}

#[test]
fn a_queue_holds_no_memory_before_its_first_frame_nor_once_idle_again() {
    let (me, mut drain) = Recipient::new(10, usize::MAX);
    let flag = Arc::new(Flag::default());
    assert_eq!(drain.capacity(), 0, "nothing allocated at creation");
    assert!(poll(&mut drain, &flag).is_pending());
    assert_eq!(drain.capacity(), 0);
    assert!(me.offer(&numbered(1)));
    assert!(drain.capacity() > 0);
    let Poll::Ready(Some(batch)) = poll(&mut drain, &flag) else {
        panic!("a batch")
    };
    drain.written(batch, 0);
    assert!(
        drain.capacity() > 0,
        "kept for the next batch of a busy client"
    );
    assert!(poll(&mut drain, &flag).is_pending());
    assert_eq!(drain.capacity(), 0, "freed once the writer waits");
}

#[test]
fn a_burst_s_capacity_is_not_kept_as_the_spare() {
    let (me, mut drain) = Recipient::new(10 * MAX_SPARE, usize::MAX);
    let flag = Arc::new(Flag::default());
    for n in 0..2 * MAX_SPARE {
        assert!(me.offer(&numbered(n)));
    }
    let Poll::Ready(Some(batch)) = poll(&mut drain, &flag) else {
        panic!("a batch")
    };
    drain.written(batch, 0);
    assert_eq!(drain.spare.capacity(), 0);
}

#[test]
fn a_weak_recipient_upgrades_only_while_a_recipient_lives() {
    let (me, _drain) = Recipient::new(10, usize::MAX);
    let weak = me.downgrade();
    let again = weak.upgrade().expect("the client lives");
    assert!(again.offer(&Frame::pong()));
    drop(me);
    assert!(weak.upgrade().is_some(), "one recipient is left");
    drop(again);
    assert!(
        weak.upgrade().is_none(),
        "the writer's end alone does not keep the client"
    );
}

#[test]
fn a_full_waiting_buffer_closes_the_client_it_stands_in_for() {
    let (me, _drain) = Recipient::new(1, usize::MAX);
    let (via, mut waiting) = me.waiting_buffer();
    assert!(via.offer(&numbered(1)));
    assert!(!via.offer(&numbered(2)));
    assert_eq!(me.kick.reason(), Some(CloseReason::SlowConsumer));
    assert_eq!(waiting.take_all().len(), 1);
}
