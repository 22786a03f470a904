//! Delivery accounting at one subscriber: which sequence numbers arrived from each publisher, and
//! whether any came twice or went backwards. Lost messages are counted at the end against what was sent.

/// What one subscriber saw from one publisher.
#[derive(Debug, Default, Clone)]
struct FromPublisher {
    /// Bit `seq` set once `seq` has been delivered.
    seen: Vec<u64>,
    distinct: u64,
    /// Highest sequence number delivered so far, if any.
    max: Option<u64>,
}

/// Counters for one subscriber, or summed over many.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    pub delivered: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Stamps naming a publisher or sequence number that was never sent.
    pub invalid: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.delivered += o.delivered;
        self.lost += o.lost;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.invalid += o.invalid;
    }
}

#[derive(Debug, Clone)]
pub struct Tracker {
    publishers: Vec<FromPublisher>,
    /// A bound on sequence numbers, so a corrupt stamp cannot make the bitmap grow without limit.
    max_seq: u64,
    counts: Counts,
}

impl Tracker {
    pub fn new(publishers: usize, max_seq: u64) -> Self {
        Tracker {
            publishers: vec![FromPublisher::default(); publishers],
            max_seq,
            counts: Counts::default(),
        }
    }

    /// Record one delivery. A duplicate is not also counted as reordered.
    pub fn record(&mut self, publisher: u32, seq: u64) {
        let Some(p) = self.publishers.get_mut(publisher as usize) else {
            self.counts.invalid += 1;
            return;
        };
        if seq >= self.max_seq {
            self.counts.invalid += 1;
            return;
        }
        self.counts.delivered += 1;
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if p.seen.len() <= word {
            p.seen.resize(word + 1, 0);
        }
        if p.seen[word] & (1 << bit) != 0 {
            self.counts.duplicated += 1;
            return;
        }
        p.seen[word] |= 1 << bit;
        p.distinct += 1;
        match p.max {
            Some(max) if seq < max => self.counts.reordered += 1,
            _ => p.max = Some(seq),
        }
    }

    /// Final counts, given how many messages each publisher sent (sequence numbers `0..sent`).
    pub fn finish(&self, sent: &[u64]) -> Counts {
        let mut counts = self.counts;
        for (i, &n) in sent.iter().enumerate() {
            let got = self.publishers.get(i).map_or(0, |p| p.distinct);
            counts.lost += n.saturating_sub(got);
        }
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(events: &[(u32, u64)]) -> Tracker {
        let mut t = Tracker::new(2, 1000);
        for &(p, s) in events {
            t.record(p, s);
        }
        t
    }

    #[test]
    fn in_order_complete_stream_is_clean() {
        let t = feed(&[(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]);
        assert_eq!(
            t.finish(&[3, 2]),
            Counts {
                delivered: 5,
                ..Counts::default()
            }
        );
    }

    #[test]
    fn gaps_are_lost_including_the_tail() {
        let t = feed(&[(0, 0), (0, 2), (1, 0)]);
        // publisher 0 sent 0..4: 1 and 3 missing; publisher 1 sent 0..2: 1 missing.
        let c = t.finish(&[4, 2]);
        assert_eq!(
            (c.delivered, c.lost, c.reordered, c.duplicated),
            (3, 3, 0, 0)
        );
    }

    #[test]
    fn a_repeat_is_a_duplicate_not_a_reorder() {
        let t = feed(&[(0, 0), (0, 1), (0, 1), (0, 0), (0, 2)]);
        let c = t.finish(&[3, 0]);
        assert_eq!(
            (c.delivered, c.lost, c.duplicated, c.reordered),
            (5, 0, 2, 0)
        );
    }

    #[test]
    fn going_backwards_is_a_reorder_per_publisher() {
        // 1 after 3 goes backwards; publisher 1's 0 after publisher 0's 3 does not.
        let t = feed(&[(0, 0), (0, 3), (1, 0), (0, 1), (0, 2), (1, 1)]);
        let c = t.finish(&[4, 2]);
        assert_eq!(
            (c.delivered, c.lost, c.duplicated, c.reordered),
            (6, 0, 0, 2)
        );
    }

    #[test]
    fn unknown_publishers_and_huge_sequence_numbers_are_invalid() {
        let t = feed(&[(7, 0), (0, 5000), (0, 0)]);
        let c = t.finish(&[1, 0]);
        assert_eq!((c.delivered, c.invalid, c.lost), (1, 2, 0));
    }

    #[test]
    fn counts_sum() {
        let mut a = Counts {
            delivered: 1,
            lost: 2,
            duplicated: 3,
            reordered: 4,
            invalid: 5,
        };
        a += a;
        assert_eq!(
            a,
            Counts {
                delivered: 2,
                lost: 4,
                duplicated: 6,
                reordered: 8,
                invalid: 10
            }
        );
    }
}
