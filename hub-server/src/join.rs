//! A join: the room's history first (what was asked: the last N, or everything since an offset,
//! all or nothing, of what the room's namespace keeps), then `joined`, then live messages with no
//! gap and no duplicate.
//!
//! With Redis, live messages for the joiner wait in a bounded buffer of their own while the
//! history is read; then the hub moves those newer than the replay into the client's queue and
//! points the membership at it, under its lock ([`Hub::settle`](crate::hub::Hub::settle)), and
//! skips the subscriber's late copies of what the replay covered. A client already in the room
//! keeps receiving throughout: its replay may repeat messages it got while the history was read
//! (same offsets: it drops them before its `joined`), and the subscriber's late copies of what
//! the replay covered are skipped for it too, so none comes after `joined`. In memory the
//! room's log is locked for the whole join, so nothing can arrive in between.

use crate::bridge::Target;
use crate::history::{History, outcome};
use crate::hub::{ClientId, Joined};
use crate::outbox::Recipient;
use crate::protocol::{Frame, JoinOutcome, Replay, Room};
use crate::state::AppState;

pub async fn join(state: &AppState, client: &ClientId, me: &Recipient, room: Room, replay: Replay) {
    let hub = &state.hub;
    // The session let only rooms of known namespaces through.
    let policy = state.settings.namespaces.policy(&room);
    let (recovery_max, presence) = (policy.recovery_max, policy.presence_mode());
    match state.history.of(policy) {
        History::Off => match hub.join(client, &room, presence) {
            Ok(_) => {
                // `joined` promises cross-hub delivery: wait for the subscription. Not only for
                // the room's first member: a second one may join while the first's SUBSCRIBE is
                // still on its way (the wait returns at once once confirmed).
                state
                    .bridge
                    .wait_subscribed(&Target::Room(room.clone()))
                    .await;
                me.offer(&Frame::joined(&room, &JoinOutcome::default()));
            }
            Err(err) => {
                me.offer(&Frame::error_in(&err, &room));
            }
        },
        History::Memory(memory) => {
            let joined = memory.with_room(&room, |log| {
                hub.join(client, &room, presence)?;
                let (frames, joined) = outcome(&replay, Some(log.read(&replay)), recovery_max);
                state.metrics.joined(&joined);
                replay_then_joined(me, &room, &frames, &joined);
                Ok(())
            });
            if let Err(err) = joined {
                me.offer(&Frame::error_in(&err, &room));
            }
        }
        History::Redis(redis) => {
            // The client's bounds, a budget of its own (emptied by `settle`, not by a writer);
            // a full one closes the client.
            let (via, mut waiting) = me.waiting_buffer();
            let was = match hub.join_via(client, &room, Some(via), presence) {
                Ok(was) => was,
                Err(err) => {
                    me.offer(&Frame::error_in(&err, &room));
                    return;
                }
            };
            let target = Target::Room(room.clone());
            let subscribed = state.bridge.wait_subscribed(&target).await;
            let stored = redis.read(&room, policy, &replay).await;
            let (frames, joined) = outcome(&replay, stored, recovery_max);
            state.metrics.joined(&joined);
            let covered = frames.last().and_then(Frame::offset).or(joined.offset);
            // Where the room's messages stand for this member: told `joined` before the room's
            // channel was subscribed, what is published from here until it is never reaches
            // this hub live; and should the subscription be lost before the room's next message,
            // the bridge needs a place to read from. It reads from the history (`catch_up`).
            if let (Some(epoch), Some(covered)) = (&joined.epoch, covered) {
                state.bridge.join_read(&target, epoch, covered, subscribed);
            }
            // A message of this hub still on its way round may be in the replay: its late copy
            // must not follow (the member would get it twice).
            state.bridge.replayed(client, &frames);
            if was == Joined::AlreadyMember
                && let Some(through) = has_already(&replay, &frames, &joined)
            {
                hub.skip_replayed(client, &room, through);
            }
            replay_then_joined(me, &room, &frames, &joined);
            // A client that was in the room all along kept receiving: nothing waited for it.
            if was != Joined::AlreadyMember {
                // Read only if a frame without offset waited: the replay's ids, parsed once.
                let replayed_ids = std::cell::OnceCell::new();
                let replayed = |frame: &Frame| {
                    let ids = replayed_ids.get_or_init(|| {
                        frames
                            .iter()
                            .filter_map(Frame::message_id)
                            .collect::<std::collections::HashSet<_>>()
                    });
                    frame.message_id().is_some_and(|id| ids.contains(&id))
                };
                hub.settle(client, &room, &mut waiting, covered, replayed);
            }
        }
    }
}

/// For a member all along: the offset through which the client has the room's messages once
/// this join's replay is queued — what the replay has, or its `since` of this epoch. Not the
/// room's top: a message at or below it may still be on its way to this hub, and the member
/// must get it live.
fn has_already(replay: &Replay, frames: &[Frame], joined: &JoinOutcome) -> Option<u64> {
    let replayed = frames.last().and_then(Frame::offset);
    let since = match replay {
        Replay::Since { epoch, offset } if joined.epoch.as_deref() == Some(epoch.as_str()) => {
            Some(*offset)
        }
        _ => None,
    };
    replayed.max(since)
}

fn replay_then_joined(me: &Recipient, room: &Room, frames: &[Frame], joined: &JoinOutcome) {
    for frame in frames {
        me.offer(&frame.replayed());
    }
    me.offer(&Frame::joined(room, joined));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(offset: u64) -> Frame {
        Frame::stored_from("{\"type\":\"message\"}", offset, "e")
    }

    #[test]
    fn a_member_all_along_has_what_the_replay_has_or_its_since_of_this_epoch_never_the_top() {
        let joined = JoinOutcome {
            epoch: Some("e".into()),
            offset: Some(9),
            ..JoinOutcome::default()
        };
        let since = |epoch: &str, offset| Replay::Since {
            epoch: epoch.into(),
            offset,
        };
        assert_eq!(has_already(&Replay::None, &[], &joined), None, "not 9");
        let last = [stored(8), stored(9)];
        assert_eq!(has_already(&Replay::Last(2), &last, &joined), Some(9));
        assert_eq!(has_already(&since("e", 9), &[], &joined), Some(9));
        assert_eq!(has_already(&since("e", 7), &last, &joined), Some(9));
        assert_eq!(has_already(&since("old", 7), &[], &joined), None);
    }
}
