//! Which node serves each hash slot: [`Node`] names one node (or the one Redis), [`Topology`]
//! maps slots to masters as `CLUSTER SLOTS` reports them. The bridge keeps a connection per node
//! and this view of its own rather than redis-rs's cluster connection, whose requests share one
//! slot map and one recovery: while a dead master's slots have no new owner, that recovery holds
//! up requests to the live masters too.

use std::fmt;
use std::sync::Arc;

use redis::Value;

/// One Redis server the bridge talks to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// The one Redis of `REDIS_URL`.
    Only,
    /// A node of a Redis Cluster, as the cluster names it.
    At { host: Arc<str>, port: u16 },
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Only => f.write_str("redis"),
            Node::At { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

/// Which master serves each slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    /// One Redis: it serves everything.
    Only,
    /// A cluster's slot ranges (inclusive, sorted, disjoint) and their masters. A slot in no
    /// range has no master now (a failover under way with no replica promoted yet).
    Slots(Vec<(u16, u16, Node)>),
}

impl Topology {
    /// The master of `slot`, if it has one.
    pub fn master(&self, slot: u16) -> Option<&Node> {
        match self {
            Topology::Only => Some(&Node::Only),
            Topology::Slots(ranges) => {
                let at = ranges.partition_point(|(_, to, _)| *to < slot);
                ranges
                    .get(at)
                    .filter(|(from, _, _)| *from <= slot)
                    .map(|(_, _, node)| node)
            }
        }
    }

    /// Every master, once each.
    pub fn masters(&self) -> Vec<Node> {
        match self {
            Topology::Only => vec![Node::Only],
            Topology::Slots(ranges) => {
                let mut nodes: Vec<Node> = ranges.iter().map(|(_, _, n)| n.clone()).collect();
                nodes.sort();
                nodes.dedup();
                nodes
            }
        }
    }

    /// A `CLUSTER SLOTS` reply, from the node at `answering` (whose host stands for a master
    /// listed without one). `None` when it is not such a reply.
    pub fn parse(reply: &Value, answering: &str) -> Option<Self> {
        let Value::Array(items) = reply else {
            return None;
        };
        let mut ranges = Vec::with_capacity(items.len());
        for item in items {
            let Value::Array(parts) = item else {
                return None;
            };
            let (Some(Value::Int(from)), Some(Value::Int(to)), Some(master)) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return None;
            };
            let (Ok(from), Ok(to)) = (u16::try_from(*from), u16::try_from(*to)) else {
                return None;
            };
            // A master of unknown address ("?") serves nobody we can reach: its slots wait.
            if let Some(node) = node_of(master, answering) {
                ranges.push((from, to, node));
            }
        }
        ranges.sort();
        Some(Topology::Slots(ranges))
    }
}

/// `[host, port, id, ...]` of a `CLUSTER SLOTS` entry. An empty host (or none) means the node
/// that answered; `?` an unknown one.
fn node_of(entry: &Value, answering: &str) -> Option<Node> {
    let Value::Array(parts) = entry else {
        return None;
    };
    let host = match parts.first() {
        Some(Value::BulkString(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Some(Value::SimpleString(s)) => s.clone(),
        Some(Value::Nil) => String::new(),
        _ => return None,
    };
    let host = match host.as_str() {
        "?" => return None,
        "" | "0.0.0.0" | "::" => answering.to_owned(),
        _ => host,
    };
    let Some(Value::Int(port)) = parts.get(1) else {
        return None;
    };
    Some(Node::At {
        host: host.into(),
        port: u16::try_from(*port).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(from: i64, to: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(from),
            Value::Int(to),
            Value::Array(vec![
                Value::BulkString(host.as_bytes().to_vec()),
                Value::Int(port),
                Value::BulkString(b"id".to_vec()),
            ]),
        ])
    }

    fn at(host: &str, port: u16) -> Node {
        Node::At {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn slots_map_to_their_masters_and_gaps_to_none() {
        let reply = Value::Array(vec![
            range(10923, 16383, "10.0.0.3", 7002),
            range(0, 5460, "10.0.0.1", 7000),
            range(5461, 10922, "", 7001),
        ]);
        let topology = Topology::parse(&reply, "10.0.0.9").expect("slots");
        assert_eq!(topology.master(0), Some(&at("10.0.0.1", 7000)));
        assert_eq!(topology.master(5460), Some(&at("10.0.0.1", 7000)));
        assert_eq!(
            topology.master(5461),
            Some(&at("10.0.0.9", 7001)),
            "no host: the answering node's"
        );
        assert_eq!(topology.master(16383), Some(&at("10.0.0.3", 7002)));
        assert_eq!(topology.masters().len(), 3);
        // A failover under way: the dead master's slots are listed nowhere, or with host "?".
        let partial = Value::Array(vec![
            range(0, 5460, "?", 7000),
            range(10923, 16383, "10.0.0.3", 7002),
        ]);
        let topology = Topology::parse(&partial, "x").expect("slots");
        assert_eq!(topology.master(100), None);
        assert_eq!(topology.master(7000), None);
        assert_eq!(topology.master(12000), Some(&at("10.0.0.3", 7002)));
        assert_eq!(Topology::Only.master(12000), Some(&Node::Only));
        assert!(Topology::parse(&Value::Okay, "x").is_none());
    }
}
