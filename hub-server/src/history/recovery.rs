//! What a join replays and what its `joined` says, from what the history holds. Recovery is all
//! or nothing: a `since` that cannot be served whole replays nothing and says why.

use crate::protocol::{Frame, JoinOutcome, Replay};

/// What the history returned for one join: the room's epoch and last offset, and the entries
/// read (oldest first).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    pub epoch: String,
    pub top: u64,
    pub entries: Vec<Frame>,
}

/// The frames to replay (oldest first) and the `joined` outcome; `None` for `stored` when the
/// history could not be read (Redis down): live delivery still starts.
pub fn outcome(
    request: &Replay,
    stored: Option<Stored>,
    recovery_max: usize,
) -> (Vec<Frame>, JoinOutcome) {
    let Some(stored) = stored else {
        let recovered = matches!(request, Replay::Since { .. });
        return (
            Vec::new(),
            JoinOutcome {
                recovered: recovered.then_some(false),
                reason: recovered.then_some("unavailable"),
                ..JoinOutcome::default()
            },
        );
    };
    let mut joined = JoinOutcome {
        epoch: Some(stored.epoch.clone()),
        offset: Some(stored.top),
        ..JoinOutcome::default()
    };
    let (epoch, after) = match request {
        Replay::None => return (Vec::new(), joined),
        Replay::Last(_) => return (stored.entries, joined),
        Replay::Since { epoch, offset } => (epoch, *offset),
    };
    let failed = |mut joined: JoinOutcome, reason| {
        joined.recovered = Some(false);
        joined.reason = Some(reason);
        (Vec::new(), joined)
    };
    if *epoch != stored.epoch {
        return failed(joined, "epoch_changed");
    }
    let missing = stored.top.saturating_sub(after);
    if missing > recovery_max as u64 {
        return failed(joined, "too_many");
    }
    let entries: Vec<Frame> = stored
        .entries
        .into_iter()
        .filter(|f| f.offset().is_some_and(|o| o > after))
        .collect();
    // Whole means every offset after `after` up to the top, one each: a trimmed stream starts
    // later than `after + 1`.
    let whole = entries.len() as u64 == missing
        && entries
            .iter()
            .zip(after + 1..)
            .all(|(f, want)| f.offset() == Some(want));
    if !whole {
        return failed(joined, "too_old");
    }
    joined.recovered = Some(true);
    (entries, joined)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(epoch: &str, offsets: impl IntoIterator<Item = u64>, top: u64) -> Stored {
        Stored {
            epoch: epoch.into(),
            top,
            entries: offsets
                .into_iter()
                .map(|o| Frame::from_stored(format!("{{\"offset\":{o}}}"), Some(o)))
                .collect(),
        }
    }

    fn since(epoch: &str, offset: u64) -> Replay {
        Replay::Since {
            epoch: epoch.into(),
            offset,
        }
    }

    fn offsets(frames: &[Frame]) -> Vec<u64> {
        frames.iter().filter_map(Frame::offset).collect()
    }

    #[test]
    fn a_whole_gap_is_recovered_in_order() {
        let (frames, joined) = outcome(&since("e", 5), Some(stored("e", 6..=9, 9)), 300);
        assert_eq!(offsets(&frames), vec![6, 7, 8, 9]);
        assert_eq!(joined.recovered, Some(true));
        assert_eq!(
            (joined.epoch.as_deref(), joined.offset),
            (Some("e"), Some(9))
        );
        let (frames, joined) = outcome(&since("e", 9), Some(stored("e", [], 9)), 300);
        assert!(frames.is_empty());
        assert_eq!(joined.recovered, Some(true), "nothing missed");
    }

    #[test]
    fn recovery_is_all_or_nothing_and_says_why() {
        let reason = |r: &Replay, s: Stored, max| {
            let (frames, joined) = outcome(r, Some(s), max);
            assert!(frames.is_empty(), "nothing is replayed when recovery fails");
            assert_eq!(joined.recovered, Some(false));
            joined.reason
        };
        assert_eq!(
            reason(&since("old", 5), stored("e", 6..=9, 9), 300),
            Some("epoch_changed")
        );
        assert_eq!(
            reason(&since("e", 5), stored("e", 8..=9, 9), 300),
            Some("too_old")
        );
        assert_eq!(
            reason(&since("e", 5), stored("e", [], 9), 3),
            Some("too_many")
        );
        let (frames, joined) = outcome(&since("e", 5), None, 300);
        assert!(frames.is_empty());
        assert_eq!(
            (joined.recovered, joined.reason),
            (Some(false), Some("unavailable"))
        );
        assert_eq!(joined.epoch, None);
    }

    #[test]
    fn history_n_replays_what_was_read_and_a_plain_join_nothing() {
        let (frames, joined) = outcome(&Replay::Last(3), Some(stored("e", 7..=9, 9)), 300);
        assert_eq!(offsets(&frames), vec![7, 8, 9]);
        assert_eq!(joined.recovered, None);
        let (frames, joined) = outcome(&Replay::None, Some(stored("e", [], 9)), 300);
        assert!(frames.is_empty());
        assert_eq!(joined.offset, Some(9));
    }
}
