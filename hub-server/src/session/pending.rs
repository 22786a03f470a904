//! Slow commands of one session — a join that waits for its subscription and reads history, a
//! presence question, a backend proxy call (subscribe, publish, rpc) — run beside the read loop
//! instead of inside it, so pings are answered, kicks and token expiry act, and other rooms'
//! commands go on while Redis or a backend is slow. Commands of one lane (one room, or the
//! session's rpc calls) still run in the order they came: a second one waits until the first is
//! done, so `joined` never follows a later `left`, and proxied messages keep their order.
//!
//! A command may ask the backend before its turn ([`Pending::start_early`]): a proxied publish's
//! call starts at once ([`calls`]: several per session in flight) and only what its answer says to
//! do waits in the lane, so a publisher is not held to one message per backend round trip, and
//! its verdicts are still applied in the order it sent the messages.
//!
//! Bounded: at most [`MAX_PENDING`] commands wait at once (running or queued behind their room);
//! one more is refused at once. A future takes memory only while it waits.

mod calls;

use std::collections::{HashMap, VecDeque};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::oneshot;

use crate::protocol::Room;

/// Commands waiting at once per connection, at most: a client cannot pile up work on the hub by
/// sending joins faster than Redis answers.
pub const MAX_PENDING: usize = 64;

/// A command's work: done when the future is.
pub type Work<'a> = BoxFuture<'a, ()>;

/// What a command's order is kept within: its room, or the session's rpc calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Lane {
    Room(Room),
    Rpc,
}

impl From<Room> for Lane {
    fn from(room: Room) -> Self {
        Lane::Room(room)
    }
}

#[derive(Default)]
pub(super) struct Pending<'a> {
    /// One future per lane with work under way; each yields its lane when done. Made at the first
    /// command: an empty `FuturesUnordered` already holds two allocations, and most connections
    /// never send a slow command.
    running: Option<FuturesUnordered<BoxFuture<'a, Lane>>>,
    /// Work queued behind the running one of its lane, in arrival order.
    queued: HashMap<Lane, VecDeque<Work<'a>>>,
    waiting: usize,
    /// Backend calls started ahead of their lane's turn. Made at the first one, boxed: most
    /// connections never make one, and the field is in every session.
    calls: Option<Box<calls::Calls<'a>>>,
}

/// Too many commands waiting.
#[derive(Debug)]
pub(super) struct Full;

impl<'a> Pending<'a> {
    /// Starts `work` in `lane` now, or after what is under way in that lane.
    pub fn start(&mut self, lane: impl Into<Lane>, work: Work<'a>) -> Result<(), Full> {
        if self.waiting >= MAX_PENDING {
            return Err(Full);
        }
        let lane = lane.into();
        self.waiting += 1;
        match self.queued.get_mut(&lane) {
            Some(queue) => queue.push_back(work),
            None => {
                self.queued.insert(lane.clone(), VecDeque::new());
                self.run(lane, work);
            }
        }
        Ok(())
    }

    /// Starts `call` now (or as soon as fewer than [`calls::MAX_CALLS`] of this session's calls are
    /// in flight), and the work it resolves to in `lane`, after what is under way there: the call
    /// does not wait for the lane, what its answer says to do does. Counts as one command.
    pub fn start_early<F>(&mut self, lane: impl Into<Lane>, call: F) -> Result<(), Full>
    where
        F: Future<Output = Work<'a>> + Send + 'a,
    {
        if self.waiting >= MAX_PENDING {
            return Err(Full);
        }
        let (answer, answered) = oneshot::channel();
        let calls = self.calls.get_or_insert_with(Box::default);
        calls.start(Box::pin(async move {
            let _ = answer.send(call.await);
        }));
        // The call's sender goes only with the call, which goes only with this set: the lane's
        // work never waits on a call that can no longer answer.
        self.start(
            lane,
            Box::pin(async move {
                if let Ok(then) = answered.await {
                    then.await;
                }
            }),
        )
    }

    /// Whether work for `room` is under way (a later command about it must wait its turn).
    pub fn busy(&self, room: &Room) -> bool {
        self.queued.contains_key(&Lane::Room(room.clone()))
    }

    pub fn is_empty(&self) -> bool {
        self.running.as_ref().is_none_or(FuturesUnordered::is_empty)
            && self.calls.as_ref().is_none_or(|calls| calls.is_empty())
    }

    /// Waits until a backend call or one piece of work is done, and starts the next of its lane;
    /// never resolves while nothing runs (select on it with `if !is_empty()`).
    pub async fn next_done(&mut self) {
        std::future::poll_fn(|cx| self.poll_done(cx)).await
    }

    fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        // Calls first: an answer that came in lets its lane's work go on in this same poll.
        let called = match &mut self.calls {
            Some(calls) => calls.poll_done(cx).is_ready(),
            None => false,
        };
        let done = match &mut self.running {
            Some(running) => running.poll_next_unpin(cx),
            None => Poll::Ready(None),
        };
        match done {
            Poll::Ready(Some(lane)) => {
                self.done(lane);
                Poll::Ready(())
            }
            _ if called => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }

    /// `lane`'s running work is done: the next of the lane starts, or the lane is closed.
    fn done(&mut self, lane: Lane) {
        self.waiting -= 1;
        let next = self.queued.get_mut(&lane).and_then(VecDeque::pop_front);
        match next {
            Some(work) => self.run(lane, work),
            None => {
                self.queued.remove(&lane);
                if self.is_empty() {
                    // Given back once idle, like they were never made.
                    self.running = None;
                    self.calls = None;
                }
            }
        }
    }

    fn run(&mut self, lane: Lane, work: Work<'a>) {
        let running = self.running.get_or_insert_with(FuturesUnordered::new);
        running.push(Box::pin(async move {
            work.await;
            lane
        }));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tokio::sync::oneshot;

    use super::*;

    fn room(name: &str) -> Room {
        Room::parse(name).expect("room")
    }

    #[tokio::test]
    async fn one_rooms_commands_run_in_order_other_rooms_do_not_wait() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut pending = Pending::default();
        let (release_a, held_a) = oneshot::channel::<()>();
        let step = |name: &'static str, gate: Option<oneshot::Receiver<()>>| {
            let log = log.clone();
            Box::pin(async move {
                if let Some(gate) = gate {
                    let _ = gate.await;
                }
                log.lock().expect("log").push(name);
            }) as Work<'static>
        };
        pending
            .start(room("a"), step("a1", Some(held_a)))
            .expect("room");
        pending.start(room("a"), step("a2", None)).expect("room");
        pending.start(room("b"), step("b1", None)).expect("room");
        assert!(pending.busy(&room("a")) && pending.busy(&room("b")));
        pending.next_done().await;
        assert_eq!(*log.lock().expect("log"), ["b1"], "b does not wait for a");
        release_a.send(()).expect("held");
        pending.next_done().await;
        pending.next_done().await;
        assert_eq!(*log.lock().expect("log"), ["b1", "a1", "a2"], "a in order");
        assert!(pending.is_empty() && !pending.busy(&room("a")));
    }

    /// Polls `pending` until nothing more is ready (the futures here wake only one another).
    fn settle(pending: &mut Pending<'_>) {
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        while pending.poll_done(&mut cx).is_ready() {}
    }

    #[test]
    fn early_calls_go_out_together_and_what_they_say_is_done_in_lane_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let mut pending = Pending::default();
        // A join under way in the room, held.
        let (release_join, join_held) = oneshot::channel::<()>();
        let join_log = log.clone();
        let join = Box::pin(async move {
            let _ = join_held.await;
            join_log.lock().expect("log").push("join");
        }) as Work<'static>;
        pending.start(room("a"), join).expect("room");
        // Three calls; the first one's answer comes last.
        type Log = Arc<Mutex<Vec<&'static str>>>;
        async fn answer(
            name: &'static str,
            gate: Option<oneshot::Receiver<()>>,
            log: Log,
            asked: Log,
        ) -> Work<'static> {
            asked.lock().expect("asked").push(name);
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Box::pin(async move { log.lock().expect("log").push(name) })
        }
        let call = |name, gate| answer(name, gate, log.clone(), asked.clone());
        let (answer_c1, c1_held) = oneshot::channel::<()>();
        pending
            .start_early(room("a"), call("c1", Some(c1_held)))
            .expect("room");
        pending
            .start_early(room("a"), call("c2", None))
            .expect("room");
        pending
            .start_early(room("a"), call("c3", None))
            .expect("room");
        settle(&mut pending);
        let mut went_out = asked.lock().expect("asked").clone();
        went_out.sort_unstable();
        assert_eq!(
            went_out,
            ["c1", "c2", "c3"],
            "every call went out while the join was under way"
        );
        assert!(
            log.lock().expect("log").is_empty(),
            "nothing before the join"
        );
        release_join.send(()).expect("held");
        settle(&mut pending);
        assert_eq!(
            *log.lock().expect("log"),
            ["join"],
            "c2 and c3 were answered, but wait for c1"
        );
        answer_c1.send(()).expect("held");
        settle(&mut pending);
        assert_eq!(*log.lock().expect("log"), ["join", "c1", "c2", "c3"]);
        assert!(pending.is_empty() && !pending.busy(&room("a")));
        assert!(
            pending.calls.is_none() && pending.running.is_none(),
            "given back"
        );
    }

    #[tokio::test]
    async fn past_the_bound_work_is_refused_until_some_is_done() {
        let mut pending = Pending::default();
        let mut gates = Vec::new();
        for i in 0..MAX_PENDING {
            let (tx, rx) = oneshot::channel::<()>();
            gates.push(tx);
            let work = Box::pin(async move {
                let _ = rx.await;
            }) as Work<'static>;
            pending
                .start(room(&format!("r{}", i % 3)), work)
                .expect("room left");
        }
        let one_more = Box::pin(async {}) as Work<'static>;
        assert!(pending.start(room("x"), one_more).is_err());
        drop(gates.remove(0));
        pending.next_done().await;
        let one_more = Box::pin(async {}) as Work<'static>;
        assert!(pending.start(room("x"), one_more).is_ok());
    }
}
