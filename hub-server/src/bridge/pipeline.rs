//! One batch of the publisher on its way to Redis: each message as a ready command ([`Item`]),
//! grouped into pipelines — all of them on one Redis, one per hash slot on a cluster (a redis-rs
//! pipeline goes whole to one node) — and what each reply means.

use std::collections::HashMap;

use redis::Value;

use crate::ack::{Ack, StoredAt};
use crate::history::append_reply;
use crate::redis_link::is_cluster_transient;

/// One message of a batch, ready to send (and to send again after a failure).
pub(super) struct Item {
    pub channel: String,
    /// The channel's hash slot (a cluster; 0 on one Redis).
    pub slot: u16,
    pub command: redis::Cmd,
    /// An append (EVALSHA) rather than a plain PUBLISH: its reply is `{offset, epoch, receivers}`.
    pub stored: bool,
    pub ack: Option<Ack>,
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

/// The messages of a batch that travel in one pipeline, in batch order.
pub(super) struct Group {
    pub slot: u16,
    /// Indices into the batch.
    pub items: Vec<usize>,
    /// The pipeline ends with a subscriber count of the broadcast channel (the hubs listening).
    pub counts_hubs: bool,
}

impl Group {
    pub fn split(items: &[Item], sharded: bool, broadcast_slot: u16) -> Vec<Group> {
        if !sharded {
            return vec![Group {
                slot: 0,
                items: (0..items.len()).collect(),
                counts_hubs: true,
            }];
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut at: HashMap<u16, usize> = HashMap::new();
        for (i, item) in items.iter().enumerate() {
            let g = *at.entry(item.slot).or_insert_with(|| {
                groups.push(Group {
                    slot: item.slot,
                    items: Vec::new(),
                    // Asked of the broadcast's master only when a batch goes there anyway; the
                    // idle check asks it otherwise.
                    counts_hubs: item.slot == broadcast_slot,
                });
                groups.len() - 1
            });
            groups[g].items.push(i);
        }
        groups
    }

    pub fn pipeline(&self, items: &[Item], sharded: bool, broadcast: &str) -> redis::Pipeline {
        let mut pipe = redis::pipe();
        // One message's error (a full Redis refusing a write, a key of the wrong type) fails that
        // message only, not the batch: a deterministic error would otherwise be re-sent for ever.
        pipe.ignore_errors();
        for &i in &self.items {
            pipe.add_command(items[i].command.clone());
        }
        if self.counts_hubs {
            let numsub = if sharded { "SHARDNUMSUB" } else { "NUMSUB" };
            pipe.cmd("PUBSUB").arg(numsub).arg(broadcast);
        }
        pipe
    }

    /// The hubs listening, from the count that ends this group's replies (when it asked).
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
        if err.code() == "NOSCRIPT" || is_cluster_transient(err.code()))
}
