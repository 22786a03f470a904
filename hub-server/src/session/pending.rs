//! Slow commands of one session — a join that waits for its subscription and reads history, a
//! presence question, a backend proxy call (subscribe, publish, rpc) — run beside the read loop
//! instead of inside it, so pings are answered, kicks and token expiry act, and other rooms'
//! commands go on while Redis or a backend is slow. Commands of one lane (one room, or the
//! session's rpc calls) still run in the order they came: a second one waits until the first is
//! done, so `joined` never follows a later `left`, and proxied messages keep their order.
//!
//! Bounded: at most [`MAX_PENDING`] commands wait at once (running or queued behind their room);
//! one more is refused at once. A future takes memory only while it waits.

use std::collections::{HashMap, VecDeque};

use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt};

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
pub(super) struct Pending<'a>(Option<Box<Lanes<'a>>>);

/// The work under way. Made at the first command and given back once nothing runs: most
/// connections never send a slow command, and an idle session carries one pointer for this
/// rather than ~80 bytes (an empty `FuturesUnordered` also holds two allocations).
#[derive(Default)]
struct Lanes<'a> {
    /// One future per lane with work under way; each yields its lane when done.
    running: FuturesUnordered<BoxFuture<'a, Lane>>,
    /// Work queued behind the running one of its lane, in arrival order (a lane is here as long
    /// as it has work running).
    queued: HashMap<Lane, VecDeque<Work<'a>>>,
    waiting: usize,
}

/// Too many commands waiting.
#[derive(Debug)]
pub(super) struct Full;

impl<'a> Pending<'a> {
    /// Starts `work` in `lane` now, or after what is under way in that lane.
    pub fn start(&mut self, lane: impl Into<Lane>, work: Work<'a>) -> Result<(), Full> {
        let lanes = self.0.get_or_insert_with(Box::default);
        if lanes.waiting >= MAX_PENDING {
            return Err(Full);
        }
        let lane = lane.into();
        lanes.waiting += 1;
        match lanes.queued.get_mut(&lane) {
            Some(queue) => queue.push_back(work),
            None => {
                lanes.queued.insert(lane.clone(), VecDeque::new());
                lanes.run(lane, work);
            }
        }
        Ok(())
    }

    /// Whether work for `room` is under way (a later command about it must wait its turn).
    pub fn busy(&self, room: &Room) -> bool {
        // The lane (a copy of the room's name) is made only when some work is under way.
        self.0
            .as_ref()
            .is_some_and(|l| l.queued.contains_key(&Lane::Room(room.clone())))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Waits until one piece of work is done and starts the next of its room; never resolves
    /// while nothing runs (select on it with `if !is_empty()`).
    pub async fn next_done(&mut self) {
        let Some(lanes) = &mut self.0 else {
            return std::future::pending().await;
        };
        let Some(lane) = lanes.running.next().await else {
            return std::future::pending().await;
        };
        lanes.waiting -= 1;
        let next = lanes.queued.get_mut(&lane).and_then(VecDeque::pop_front);
        match next {
            Some(work) => lanes.run(lane, work),
            None => {
                lanes.queued.remove(&lane);
                if lanes.running.is_empty() {
                    // Given back once idle, like it was never made.
                    self.0 = None;
                }
            }
        }
    }
}

impl<'a> Lanes<'a> {
    fn run(&mut self, lane: Lane, work: Work<'a>) {
        self.running.push(Box::pin(async move {
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
