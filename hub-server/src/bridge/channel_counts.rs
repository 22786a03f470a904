//! What the publisher remembers per channel: how many messages it published there (the `n` of
//! each envelope, so receivers can count what they missed), how many subscribers the last one
//! reached (whom to wait for after an outage), and how recently it was used. Bounded: past
//! [`MAX_TRACKED_CHANNELS`] the half published to longest ago is forgotten (their counts restart
//! at 1, which receivers take as a restart, not a loss), never all of them at once.

use std::collections::HashMap;

/// Channels remembered at most (before the older half is forgotten).
pub const MAX_TRACKED_CHANNELS: usize = 65536;

#[derive(Debug, Default, Clone, Copy)]
struct ChannelStats {
    /// Publishes on this channel by this hub.
    published: u64,
    /// Subscribers that received the last publish here.
    receivers: i64,
    /// The batch of this hub's last publish here (the publisher numbers its batches): how recent.
    batch: u64,
}

#[derive(Debug, Default)]
pub struct ChannelCounts {
    channels: HashMap<String, ChannelStats>,
    /// The number of the batch being built.
    batch: u64,
}

impl ChannelCounts {
    /// A new batch begins; makes room first when the map is past its bound.
    pub fn next_batch(&mut self) {
        if self.channels.len() > MAX_TRACKED_CHANNELS {
            self.forget_older_half();
        }
        self.batch += 1;
    }

    /// Counts one publish on `channel` in the current batch; returns its number on the channel.
    pub fn published(&mut self, channel: &str) -> u64 {
        let batch = self.batch;
        let entry = match self.channels.get_mut(channel) {
            Some(entry) => entry,
            None => self.channels.entry(channel.to_owned()).or_default(),
        };
        entry.published += 1;
        entry.batch = batch;
        entry.published
    }

    /// Subscribers that received the last publish on `channel` (0 when unknown).
    pub fn receivers(&self, channel: &str) -> i64 {
        self.channels.get(channel).map_or(0, |s| s.receivers)
    }

    pub fn set_receivers(&mut self, channel: &str, receivers: i64) {
        if let Some(s) = self.channels.get_mut(channel) {
            s.receivers = receivers;
        }
    }

    /// Keeps the channels published to in the newer half of the batches.
    fn forget_older_half(&mut self) {
        let mut batches: Vec<u64> = self.channels.values().map(|s| s.batch).collect();
        if let Some(cut) = super::sequence::median(&mut batches) {
            self.channels.retain(|_, s| s.batch > cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_the_channels_published_to_longest_ago_go_not_all() {
        let mut counts = ChannelCounts::default();
        for b in 0..10u64 {
            counts.next_batch();
            assert_eq!(counts.published(&format!("c{b}")), 1);
        }
        counts.forget_older_half();
        let mut kept: Vec<_> = counts.channels.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["c6", "c7", "c8", "c9"]);
    }

    #[test]
    fn counts_grow_per_channel_and_receivers_are_remembered() {
        let mut counts = ChannelCounts::default();
        counts.next_batch();
        assert_eq!(counts.published("a"), 1);
        assert_eq!(counts.published("a"), 2);
        assert_eq!(counts.published("b"), 1);
        counts.set_receivers("a", 3);
        assert_eq!((counts.receivers("a"), counts.receivers("b")), (3, 0));
    }
}
