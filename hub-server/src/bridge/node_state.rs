//! One Redis node as a bridge task sees it: its connection, whether a connection is being made
//! (one attempt at a time), and when to try again after a failure (capped, jittered backoff).
//! Each connection gets a number, so that the failure of an old one, reported late, does not
//! take down its successor.

use std::time::Duration;

use tokio::time::Instant;

use crate::redis_link::Backoff;

#[derive(Debug)]
pub(super) struct NodeState<C> {
    conn: Option<C>,
    /// Number of the current connection (or of the last one).
    generation: u64,
    /// A connection is being made.
    pub connecting: bool,
    /// Its last connection failed, or it has had none yet: the node is down until one works.
    down: bool,
    /// A connection failed (or could not be made) since the last one that worked: what waited
    /// for the node waited out an outage.
    outage: bool,
    retry_at: Option<Instant>,
    backoff: Backoff,
}

impl<C: Clone> NodeState<C> {
    pub fn new(reconnect_max: Duration) -> Self {
        NodeState {
            conn: None,
            generation: 0,
            connecting: false,
            down: true,
            outage: false,
            retry_at: None,
            backoff: Backoff::new(reconnect_max),
        }
    }

    /// The working connection and its number.
    pub fn conn(&self) -> Option<(C, u64)> {
        self.conn.clone().map(|c| (c, self.generation))
    }

    /// Its last connection worked (a reset, not a failure, may have dropped it since).
    pub fn is_up(&self) -> bool {
        !self.down
    }

    /// A connection failed since the last one that worked (a node never tried has had none).
    pub fn in_outage(&self) -> bool {
        self.outage
    }

    /// No connection, none being made, and not waiting out a backoff: time to connect.
    pub fn may_connect(&self, now: Instant) -> bool {
        self.conn.is_none() && !self.connecting && self.retry_at.is_none_or(|at| at <= now)
    }

    /// When it may be tried again, while it waits out a backoff without a connection.
    pub fn retry_at(&self) -> Option<Instant> {
        match (&self.conn, self.connecting) {
            (None, false) => self.retry_at,
            _ => None,
        }
    }

    /// A fresh connection works; returns its number.
    pub fn connected(&mut self, conn: C) -> u64 {
        self.generation += 1;
        self.conn = Some(conn);
        self.connecting = false;
        self.down = false;
        self.outage = false;
        self.retry_at = None;
        self.backoff.reset();
        self.generation
    }

    /// Connection number `generation` failed (or a new one could not be made: `None`): drop it
    /// and wait before the next. A report about an older connection changes nothing; returns
    /// whether this one did.
    pub fn failed(&mut self, generation: Option<u64>, now: Instant) -> bool {
        match generation {
            Some(g) if g != self.generation || self.conn.is_none() => return false,
            Some(_) => {}
            None => self.connecting = false,
        }
        self.conn = None;
        self.down = true;
        self.outage = true;
        self.retry_at = Some(now + self.backoff.next_delay());
        true
    }

    /// Drops the connection without counting a failure (the node forgot our script, or the
    /// connection is not needed): the next use connects at once.
    pub fn reset(&mut self) {
        self.conn = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_waits_out_a_backoff_and_a_late_report_of_an_old_connection_is_ignored() {
        let now = Instant::now();
        let mut node: NodeState<&str> = NodeState::new(Duration::from_secs(1));
        assert!(!node.is_up() && node.may_connect(now) && !node.in_outage());
        let first = node.connected("c1");
        assert!(node.is_up() && !node.may_connect(now));
        assert!(node.failed(Some(first), now));
        assert!(!node.is_up() && !node.may_connect(now), "backing off");
        assert!(node.in_outage());
        let at = node.retry_at().expect("a retry time");
        assert!(at > now && at <= now + Duration::from_secs(1));
        assert!(node.may_connect(at));
        node.connecting = true;
        assert_eq!(node.retry_at(), None, "connecting: no timer");
        let second = node.connected("c2");
        assert!(!node.in_outage());
        assert!(
            !node.failed(Some(first), at),
            "the old connection's failure"
        );
        assert_eq!(node.conn(), Some(("c2", second)));
        node.reset();
        assert!(
            node.may_connect(at) && node.is_up(),
            "a reset is not a failure"
        );
    }
}
