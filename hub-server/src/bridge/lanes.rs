//! The publisher's messages by hash slot, a lane per slot (one lane on one Redis): a lane's
//! messages leave in the order they came, one batch of a lane on its way at a time, and a lane
//! whose send failed keeps its messages — and those that come after them — for a retry, while the
//! other lanes go on. Only lanes with messages (or one on its way) are kept.
//!
//! A lane retries on a short backoff of its own (at most [`LANE_RETRY_MAX`]): a cluster that
//! refuses writes for a moment (CLUSTERDOWN while a failed master's replica is elected) is
//! noticed back within that. A failed node is retried on the node's own backoff instead.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::pipeline::Item;
use crate::redis_link::Backoff;

/// The longest a lane waits between two retries.
pub(super) const LANE_RETRY_MAX: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(super) struct Lanes {
    lanes: HashMap<u16, Lane>,
    retry_max: Duration,
}

#[derive(Debug)]
struct Lane {
    queue: VecDeque<Item>,
    /// A batch of this lane is on its way.
    sending: bool,
    /// Its messages waited out a failure: before they go, the other hubs must listen again.
    waited: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

/// How a lane's batch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// Every message has its answer.
    Done,
    /// Redis asked for some again: retry after a backoff — once the other hubs listen again
    /// when `moved` (the slot went to another node, or the node restarted).
    Retry { moved: bool },
    /// The node failed: retry as soon as a node can take the lane (its own backoff decides).
    NodeFailed,
}

impl Lanes {
    pub fn new(reconnect_max: Duration) -> Self {
        Lanes {
            lanes: HashMap::new(),
            retry_max: reconnect_max.min(LANE_RETRY_MAX),
        }
    }

    pub fn push(&mut self, item: Item) {
        let retry_max = self.retry_max;
        self.lanes
            .entry(item.slot)
            .or_insert_with(|| Lane {
                queue: VecDeque::new(),
                sending: false,
                waited: false,
                retry_at: None,
                backoff: Backoff::new(retry_max),
            })
            .queue
            .push_back(item);
    }

    /// Messages waiting (not on their way).
    pub fn queued(&self) -> usize {
        self.lanes.values().map(|l| l.queue.len()).sum()
    }

    /// Nothing waiting and nothing on its way.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.lanes.is_empty()
    }

    /// Slots whose messages may go now: some waiting, none on their way, no retry pending.
    pub fn ready(&self, now: Instant) -> Vec<u16> {
        self.lanes
            .iter()
            .filter(|(_, l)| {
                !l.sending && !l.queue.is_empty() && l.retry_at.is_none_or(|at| at <= now)
            })
            .map(|(slot, _)| *slot)
            .collect()
    }

    /// Whether `slot`'s messages waited out a failure.
    pub fn waited(&self, slot: u16) -> bool {
        self.lanes.get(&slot).is_some_and(|l| l.waited)
    }

    /// `slot`'s messages have no node to go to now: they wait out an outage.
    pub fn mark_waited(&mut self, slot: u16) {
        if let Some(lane) = self.lanes.get_mut(&slot) {
            lane.waited = true;
        }
    }

    /// Up to `max` of `slot`'s first messages, now on their way.
    pub fn take(&mut self, slot: u16, max: usize) -> Vec<Item> {
        let Some(lane) = self.lanes.get_mut(&slot) else {
            return Vec::new();
        };
        lane.sending = true;
        let n = lane.queue.len().min(max);
        lane.queue.drain(..n).collect()
    }

    /// A batch of `slot` came back: `kept` are the messages still to send (in their order), ahead
    /// of any that came meanwhile.
    pub fn returned(&mut self, slot: u16, kept: Vec<Item>, how: Sent, now: Instant) {
        let Some(lane) = self.lanes.get_mut(&slot) else {
            return;
        };
        lane.sending = false;
        for item in kept.into_iter().rev() {
            lane.queue.push_front(item);
        }
        match how {
            Sent::Done => {
                lane.waited = false;
                lane.retry_at = None;
                lane.backoff.reset();
            }
            Sent::Retry { moved } => {
                lane.waited |= moved;
                lane.retry_at = Some(now + lane.backoff.next_delay());
            }
            Sent::NodeFailed => lane.waited = true,
        }
        if lane.queue.is_empty() && how == Sent::Done {
            self.lanes.remove(&slot);
        }
    }

    /// The earliest retry of a lane with messages waiting for it.
    pub fn next_retry(&self) -> Option<Instant> {
        self.lanes
            .values()
            .filter(|l| !l.sending && !l.queue.is_empty())
            .filter_map(|l| l.retry_at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(slot: u16, n: u32) -> Item {
        Item {
            channel: format!("c{slot}:{n}"),
            slot,
            command: redis::cmd("PING"),
            stored: false,
            ack: None,
        }
    }

    fn names(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.channel.as_str()).collect()
    }

    #[test]
    fn a_failed_lane_keeps_its_order_and_waits_while_the_others_go_on() {
        let now = Instant::now();
        let mut lanes = Lanes::new(Duration::from_secs(1));
        for n in 0..3 {
            lanes.push(item(1, n));
            lanes.push(item(2, n));
        }
        let mut ready = lanes.ready(now);
        ready.sort_unstable();
        assert_eq!(ready, [1, 2]);
        let first = lanes.take(1, 2);
        assert_eq!(names(&first), ["c1:0", "c1:1"]);
        assert_eq!(lanes.take(2, 10).len(), 3);
        assert_eq!(lanes.ready(now), Vec::<u16>::new(), "both on their way");
        lanes.push(item(1, 3));
        // Slot 1's master is moving: its batch comes back, ahead of what came since.
        lanes.returned(1, first, Sent::Retry { moved: true }, now);
        assert!(lanes.waited(1));
        assert_eq!(lanes.ready(now), Vec::<u16>::new(), "backing off");
        let retry = lanes.next_retry().expect("a retry");
        assert!(retry <= now + LANE_RETRY_MAX);
        // Slot 2 goes on meanwhile; done and empty, its lane goes.
        lanes.returned(2, Vec::new(), Sent::Done, now);
        assert_eq!(lanes.queued(), 4);
        assert_eq!(lanes.ready(retry), [1]);
        let again = lanes.take(1, 10);
        assert_eq!(names(&again), ["c1:0", "c1:1", "c1:2", "c1:3"]);
        lanes.returned(1, Vec::new(), Sent::Done, retry);
        assert!(lanes.is_empty() && !lanes.waited(1));
    }

    #[test]
    fn after_a_node_failure_a_lane_may_go_at_once_to_another_node() {
        let now = Instant::now();
        let mut lanes = Lanes::new(Duration::from_secs(1));
        lanes.push(item(7, 0));
        let batch = lanes.take(7, 10);
        lanes.returned(7, batch, Sent::NodeFailed, now);
        assert_eq!(lanes.ready(now), [7]);
        assert!(lanes.waited(7), "its subscribers are to be awaited");
        assert_eq!(lanes.next_retry(), None);
    }
}
