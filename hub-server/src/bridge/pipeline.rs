//! What the publisher sends to one node at a time: each message as a ready command ([`Item`]),
//! the messages of some slots as one pipeline ([`Batch`]), and what each reply means.

use redis::Value;

use crate::ack::{Ack, StoredAt};
use crate::history::append_reply;
use crate::redis_link::is_cluster_transient;

/// One message, ready to send (and to send again after a failure).
pub(super) struct Item {
    pub channel: String,
    /// The channel's hash slot (a cluster; 0 on one Redis).
    pub slot: u16,
    pub command: redis::Cmd,
    /// An append (EVALSHA) rather than a plain PUBLISH: its reply is `{offset, epoch, receivers}`.
    pub stored: bool,
    pub ack: Option<Ack>,
}

impl std::fmt::Debug for Item {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Item")
            .field("channel", &self.channel)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

impl Item {
    /// Where the message was stored (no offset for a plain publish or a re-sent append) and how
    /// many subscribers received it.
    pub fn reply(&self, reply: &Value) -> (StoredAt, Option<i64>) {
        match (self.stored, reply) {
            (false, Value::Int(receivers)) => (StoredAt::nowhere(), Some(*receivers)),
            (true, reply) => append_reply(reply),
            _ => (StoredAt::nowhere(), None),
        }
    }
}

/// The messages of some slots, all served by one node, each slot's in order: one pipeline.
pub(super) struct Batch {
    pub lanes: Vec<(u16, Vec<Item>)>,
    /// The pipeline ends with a subscriber count of the broadcast channel (the hubs listening):
    /// asked of the broadcast channel's master only.
    pub counts_hubs: bool,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.lanes.iter().map(|(_, items)| items.len()).sum()
    }

    /// Drops the messages whose server API caller withdrew them, and hands the rest over: from
    /// here on they count as sent (a reply that never comes may still mean stored). Called just
    /// before the pipeline goes out, so a message waiting out an outage stays withdrawable.
    /// Returns how many were dropped.
    pub fn hand_over(&mut self) -> usize {
        let before = self.len();
        for (_, items) in &mut self.lanes {
            items.retain(|item| item.ack.as_ref().is_none_or(Ack::may_send));
        }
        before - self.len()
    }

    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.lanes.iter().flat_map(|(_, items)| items)
    }

    pub fn pipeline(&self, sharded: bool, broadcast: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        // One message's error (a full Redis refusing a write, a key of the wrong type) fails that
        // message only, not the batch: a deterministic error would otherwise be re-sent for ever.
        pipe.ignore_errors();
        for item in self.items() {
            pipe.add_command(item.command.clone());
        }
        if self.counts_hubs {
            let numsub = if sharded { "SHARDNUMSUB" } else { "NUMSUB" };
            pipe.cmd("PUBSUB").arg(numsub).arg(broadcast);
        }
        pipe
    }

    /// The hubs listening, from the count that ends the replies (when it asked).
    pub fn hubs_listening(&self, replies: &[Value]) -> Option<i64> {
        if !self.counts_hubs {
            return None;
        }
        match replies.last() {
            Some(Value::Array(numsub)) => match numsub.get(1) {
                Some(Value::Int(n)) => Some(*n),
                _ => None,
            },
            _ => None,
        }
    }
}

/// A reply that says "not done, try again": the script is missing, or the cluster is moving.
pub(super) fn must_retry(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(err)
        if is_noscript(reply) || is_cluster_transient(err.code()))
}

/// A retry that must first wait for the other hubs' subscribers: the slot is served elsewhere now
/// (MOVED, ASK; READONLY: the node became a replica) or the node restarted (NOSCRIPT, LOADING).
/// A cluster refusing writes for a moment (CLUSTERDOWN, TRYAGAIN, MASTERDOWN) moved nothing.
pub(super) fn subscribers_moved(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(err)
        if matches!(err.code(), "MOVED" | "ASK" | "READONLY" | "NOSCRIPT" | "LOADING"))
}

/// The node does not know the append script (restarted, flushed, a replica promoted without it).
pub(super) fn is_noscript(reply: &Value) -> bool {
    matches!(reply, Value::ServerError(err) if err.code() == "NOSCRIPT")
}
