//! The subscriber's book of channels: which it wants (broadcast, control, rooms with local
//! members), on which node each is confirmed, which are on their way, and what each node has to
//! drop. Pure bookkeeping, no I/O: the subscriber asks it what to do next on a node
//! ([`Placement::next`]) and tells it what happened. A node's loss touches only that node's
//! channels; a topology change moves only the channels whose slot changed master.

use std::collections::{HashMap, HashSet};

use crate::redis_link::{Node, Topology, key_slot};

/// What to do next on a node.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Op {
    Subscribe(Vec<String>),
    Unsubscribe(Vec<String>),
}

#[derive(Debug)]
pub(super) struct Placement {
    sharded: bool,
    wanted: HashSet<String>,
    /// Confirmed subscriptions, and where.
    placed: HashMap<String, Node>,
    /// Wanted, neither confirmed nor on their way, by hash slot (so that a node's share is found
    /// without looking at every channel).
    unplaced: HashMap<u16, HashSet<String>>,
    /// SUBSCRIBE sent, confirmation awaited.
    pending: HashSet<String>,
    /// Subscriptions a node is to drop: rooms left, channels whose slot moved away.
    leaving: HashMap<Node, Vec<String>>,
}

impl Placement {
    pub fn new(sharded: bool) -> Self {
        Placement {
            sharded,
            wanted: HashSet::new(),
            placed: HashMap::new(),
            unplaced: HashMap::new(),
            pending: HashSet::new(),
            leaving: HashMap::new(),
        }
    }

    fn slot(&self, channel: &str) -> u16 {
        if self.sharded { key_slot(channel) } else { 0 }
    }

    fn queue_up(&mut self, channel: String) {
        let slot = self.slot(&channel);
        self.unplaced.entry(slot).or_default().insert(channel);
    }

    fn take_unplaced(&mut self, channel: &str) -> bool {
        let slot = self.slot(channel);
        let Some(set) = self.unplaced.get_mut(&slot) else {
            return false;
        };
        let found = set.remove(channel);
        if set.is_empty() {
            self.unplaced.remove(&slot);
        }
        found
    }

    /// A channel to subscribe to (a room got its first local member).
    pub fn want(&mut self, channel: String) {
        if !self.wanted.insert(channel.clone()) {
            return;
        }
        if !self.pending.contains(&channel) && !self.placed.contains_key(&channel) {
            self.queue_up(channel);
        }
    }

    pub fn wants(&self, channel: &str) -> bool {
        self.wanted.contains(channel)
    }

    /// A channel no longer wanted; true when it was subscribed (it no longer counts as such).
    pub fn unwant(&mut self, channel: &str) -> bool {
        if !self.wanted.remove(channel) {
            return false;
        }
        if let Some(node) = self.placed.remove(channel) {
            self.leaving
                .entry(node)
                .or_default()
                .push(channel.to_owned());
            return true;
        }
        // Waiting: forgotten. On its way: dropped when its confirmation comes.
        self.take_unplaced(channel);
        false
    }

    /// What `node` should do next: drop what it is to drop first (as UNSUBSCRIBE then SUBSCRIBE
    /// of a room left and joined again must go), then subscribe the wanted channels of the slots
    /// it serves, `max` at a time. What it returns to subscribe is now on its way.
    pub fn next(&mut self, node: &Node, topology: &Topology, max: usize) -> Option<Op> {
        if let Some(leaving) = self.leaving.get_mut(node) {
            let n = leaving.len().min(max);
            let chunk: Vec<String> = leaving.drain(..n).collect();
            if leaving.is_empty() {
                self.leaving.remove(node);
            }
            if !chunk.is_empty() {
                return Some(Op::Unsubscribe(chunk));
            }
        }
        let mut chunk = Vec::new();
        let slots: Vec<u16> = self
            .unplaced
            .keys()
            .copied()
            .filter(|slot| topology.master(*slot) == Some(node))
            .collect();
        for slot in slots {
            let Some(set) = self.unplaced.get_mut(&slot) else {
                continue;
            };
            let take: Vec<String> = set.iter().take(max - chunk.len()).cloned().collect();
            for channel in &take {
                set.remove(channel);
            }
            if set.is_empty() {
                self.unplaced.remove(&slot);
            }
            chunk.extend(take);
            if chunk.len() == max {
                break;
            }
        }
        if chunk.is_empty() {
            return None;
        }
        self.pending.extend(chunk.iter().cloned());
        Some(Op::Subscribe(chunk))
    }

    /// The nodes that have something to do: masters of waiting channels, nodes with
    /// subscriptions to drop.
    pub fn busy_nodes(&self, topology: &Topology) -> HashSet<Node> {
        let mut nodes: HashSet<Node> = self
            .unplaced
            .keys()
            .filter_map(|slot| topology.master(*slot).cloned())
            .collect();
        nodes.extend(self.leaving.keys().cloned());
        nodes
    }

    /// `node` confirmed `channels`; returns those still wanted (now subscribed). The others were
    /// left meanwhile: `node` is to drop them.
    pub fn subscribed(&mut self, node: &Node, channels: Vec<String>) -> Vec<String> {
        let mut confirmed = Vec::with_capacity(channels.len());
        for channel in channels {
            self.pending.remove(&channel);
            if self.wanted.contains(&channel) {
                self.placed.insert(channel.clone(), node.clone());
                confirmed.push(channel);
            } else {
                self.leaving.entry(node.clone()).or_default().push(channel);
            }
        }
        confirmed
    }

    /// A SUBSCRIBE was not confirmed: what is still wanted waits for the next try.
    pub fn not_subscribed(&mut self, channels: Vec<String>) {
        for channel in channels {
            self.pending.remove(&channel);
            if self.wanted.contains(&channel) {
                self.queue_up(channel);
            }
        }
    }

    /// `node`'s connection is gone, and every subscription on it: returns the channels that were
    /// subscribed there (those still wanted wait for the next try) and those it was to drop.
    pub fn lost(&mut self, node: &Node) -> (Vec<String>, Vec<String>) {
        let dropped = self.leaving.remove(node).unwrap_or_default();
        let gone: Vec<String> = self
            .placed
            .iter()
            .filter(|(_, n)| *n == node)
            .map(|(c, _)| c.clone())
            .collect();
        for channel in &gone {
            self.placed.remove(channel);
            self.queue_up(channel.clone());
        }
        (gone, dropped)
    }

    /// The cluster's slots changed masters: channels subscribed on a node that no longer serves
    /// their slot go to the new master (and the old node drops them). Returns them.
    pub fn moved(&mut self, topology: &Topology) -> Vec<String> {
        let moved: Vec<(String, Node)> = self
            .placed
            .iter()
            .filter(|(c, n)| topology.master(self.slot(c)) != Some(*n))
            .map(|(c, n)| (c.clone(), n.clone()))
            .collect();
        for (channel, node) in &moved {
            self.placed.remove(channel);
            self.leaving
                .entry(node.clone())
                .or_default()
                .push(channel.clone());
            self.queue_up(channel.clone());
        }
        moved.into_iter().map(|(c, _)| c).collect()
    }

    /// Nodes with subscriptions (confirmed, or to drop).
    pub fn holds(&self, node: &Node) -> bool {
        self.leaving.contains_key(node) || self.placed.values().any(|n| n == node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> Node {
        Node::At {
            host: "h".into(),
            port,
        }
    }

    /// Two masters: slots below 8192 on port 1, the rest on port 2.
    fn two(first: Node, second: Node) -> Topology {
        Topology::Slots(vec![(0, 8191, first), (8192, 16383, second)])
    }

    /// A channel whose slot is on the first (true) or second half.
    fn channel(first_half: bool, i: u32) -> String {
        (0..)
            .map(|n| format!("c{i}-{n}"))
            .find(|c| (key_slot(c) < 8192) == first_half)
            .expect("a channel")
    }

    fn subscribe_all(p: &mut Placement, node: &Node, t: &Topology) -> Vec<String> {
        let mut all = Vec::new();
        while let Some(Op::Subscribe(chunk)) = p.next(node, t, 2) {
            all.extend(p.subscribed(node, chunk));
        }
        all.sort();
        all
    }

    #[test]
    fn a_lost_node_takes_only_its_channels_and_they_go_to_its_successor() {
        let (n1, n2, n3) = (at(1), at(2), at(3));
        let t = two(n1.clone(), n2.clone());
        let mut p = Placement::new(true);
        let (a, b, c) = (channel(true, 1), channel(true, 2), channel(false, 3));
        for ch in [&a, &b, &c] {
            p.want(ch.clone());
        }
        assert_eq!(p.busy_nodes(&t), HashSet::from([n1.clone(), n2.clone()]));
        let mut on1 = vec![a.clone(), b.clone()];
        on1.sort();
        assert_eq!(subscribe_all(&mut p, &n1, &t), on1);
        assert_eq!(subscribe_all(&mut p, &n2, &t), std::slice::from_ref(&c));
        assert!(p.busy_nodes(&t).is_empty());
        // Node 1 dies: its two channels wait; node 2's is untouched.
        let (mut gone, dropped) = p.lost(&n1);
        assert!(dropped.is_empty());
        gone.sort();
        assert_eq!(gone, on1);
        assert!(p.holds(&n2) && !p.holds(&n1));
        assert_eq!(p.next(&n2, &t, 10), None, "nothing to do on the live node");
        // Its replica, node 3, is promoted: the two go there.
        let promoted = two(n3.clone(), n2.clone());
        assert!(p.moved(&promoted).is_empty(), "nothing subscribed moved");
        assert_eq!(subscribe_all(&mut p, &n3, &promoted), on1);
        assert!(p.busy_nodes(&promoted).is_empty());
    }

    #[test]
    fn leaving_and_joining_again_goes_unsubscribe_then_subscribe() {
        let n1 = at(1);
        let t = Topology::Only;
        let mut p = Placement::new(false);
        p.want("r".into());
        assert_eq!(subscribe_all(&mut p, &Node::Only, &t), ["r"]);
        assert!(p.unwant("r"), "was subscribed");
        p.want("r".into());
        assert_eq!(
            p.next(&Node::Only, &t, 10),
            Some(Op::Unsubscribe(vec!["r".into()]))
        );
        assert_eq!(
            p.next(&Node::Only, &t, 10),
            Some(Op::Subscribe(vec!["r".into()]))
        );
        // Left while on its way: dropped once confirmed.
        assert!(!p.unwant("r"));
        assert!(p.subscribed(&Node::Only, vec!["r".into()]).is_empty());
        assert_eq!(
            p.next(&Node::Only, &t, 10),
            Some(Op::Unsubscribe(vec!["r".into()]))
        );
        // A failed SUBSCRIBE: still wanted, it waits for the next try.
        p.want("s".into());
        let Some(Op::Subscribe(chunk)) = p.next(&Node::Only, &t, 10) else {
            panic!("a subscribe");
        };
        p.not_subscribed(chunk);
        assert_eq!(
            p.next(&Node::Only, &t, 10),
            Some(Op::Subscribe(vec!["s".into()]))
        );
        assert!(!p.holds(&n1));
    }

    #[test]
    fn a_slot_that_moves_takes_its_channel_to_the_new_master_and_off_the_old() {
        let (n1, n2) = (at(1), at(2));
        let t = two(n1.clone(), n2.clone());
        let mut p = Placement::new(true);
        let (a, c) = (channel(true, 1), channel(false, 2));
        p.want(a.clone());
        p.want(c.clone());
        subscribe_all(&mut p, &n1, &t);
        subscribe_all(&mut p, &n2, &t);
        // Everything now on node 2 (a resharding, say).
        let all_on_2 = Topology::Slots(vec![(0, 16383, n2.clone())]);
        assert_eq!(p.moved(&all_on_2), std::slice::from_ref(&a));
        assert_eq!(
            p.next(&n1, &all_on_2, 10),
            Some(Op::Unsubscribe(vec![a.clone()]))
        );
        assert_eq!(subscribe_all(&mut p, &n2, &all_on_2), [a]);
    }
}
