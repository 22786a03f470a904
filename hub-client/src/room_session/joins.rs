//! A room's joins: which to send (the first, with `history`; `since` the room's position; plain,
//! for a hub keeping no history), and what each answer means — the room starts, recovered,
//! must ask again later (Redis down), lost messages (said with a `Recovery` event), or was
//! refused. Each kind of answer is one method.

use std::time::Duration;

use super::state::{JoinKind, Joining, Reason, RoomSession};
use crate::connection::Asked;
use crate::error::{ErrorCode, HubError};
use crate::events::{JoinCause, Joined, Recovery, RoomEvent};
use crate::frame::{Inbound, Kind, outbound};
use crate::link::Link;
use crate::timers::TimerKey;

/// What a `joined` frame said about the room's position.
struct Answer<'f> {
    epoch: Option<&'f str>,
    offset: Option<u64>,
    reason: Option<&'f str>,
}

impl RoomSession {
    pub(super) fn send_join(&mut self, kind: JoinKind, reason: Reason, link: &mut Link<'_>) {
        let position = self.stream.position();
        let frame = match (kind, &position) {
            (JoinKind::Since, Some(p)) => {
                outbound::join(&self.name, None, Some((p.epoch.as_str(), p.offset)))
            }
            (JoinKind::First, _) => outbound::join(&self.name, self.history, None),
            _ => outbound::join(&self.name, None, None),
        };
        self.joining = Some(Joining {
            kind,
            reason,
            sent_at: link.now,
        });
        self.app.counting = true;
        self.app.replayed = 0;
        link.ask(&self.name, self.id, Asked::Join, frame);
    }

    /// A `since` re-join on the current connection (once the join in flight is answered).
    pub(super) fn request_rejoin(&mut self, reason: Reason, link: &mut Link<'_>) {
        if self.failed.is_some() || !self.joined_now(link) || self.stream.position().is_none() {
            return;
        }
        if self.joining.is_some() {
            self.want.get_or_insert(reason);
            return;
        }
        self.send_join(JoinKind::Since, reason, link);
    }

    /// An answer the connection matched to a question of ours.
    pub(crate) fn on_answer(&mut self, asked: Asked, frame: Inbound, link: &mut Link<'_>) {
        if self.ended.is_some() {
            return;
        }
        match (asked, frame.kind) {
            (Asked::Join, Kind::Joined) => self.on_joined(&frame, link),
            (Asked::Join, Kind::Error) => self.on_join_error(&frame, link),
            (Asked::Presence, _) => self.on_presence_answer(frame, link),
            _ => {}
        }
    }

    fn on_joined(&mut self, frame: &Inbound, link: &mut Link<'_>) {
        let Some(j) = self.joining.take() else {
            return;
        };
        self.app.counting = false;
        let replayed = self.app.replayed;
        let newly = self.joined_gen != link.generation();
        self.joined_gen = link.generation();
        let answer = Answer {
            epoch: frame.epoch.as_deref().filter(|e| !e.is_empty()),
            offset: frame.offset,
            reason: frame.reason.as_deref(),
        };
        match (j.kind, frame.recovered) {
            (JoinKind::First | JoinKind::Plain, _) => self.started(&j, &answer, link),
            (JoinKind::Since, Some(true)) => self.recovered(&j, &answer, replayed, link),
            (JoinKind::Since, Some(false))
                if answer.epoch.is_none() || answer.reason == Some("unavailable") =>
            {
                self.retry_later(&j, answer.reason, link)
            }
            (JoinKind::Since, Some(false)) => self.lost(&j, &answer, replayed, link),
            // A since join answered without `recovered`: a hub keeping no history.
            (JoinKind::Since, None) => self.started(&j, &answer, link),
        }
        if newly && self.ended.is_none() {
            self.now_joined(j.reason, link);
        }
        if self.joining.is_some() || self.ended.is_some() {
            return;
        }
        if let Some(reason) = self.want.take() {
            self.request_rejoin(reason, link);
        } else if self.stream.has_gap() {
            self.schedule_gap(link);
        }
    }

    /// The room starts at the answer's position (the first join, or any join to a hub keeping
    /// no history, which cannot say what was missed).
    fn started(&mut self, j: &Joining, answer: &Answer<'_>, link: &mut Link<'_>) {
        let (epoch, offset) = (answer.epoch, answer.offset);
        let outcome = self.stream_op(link, |s, d| s.start(epoch, offset, d));
        self.result(outcome, link);
        if j.kind != JoinKind::First {
            self.recovery(false, Some("no_history"), 0, j.reason);
            link.outbox.after_read(&self.name, false, j.sent_at, true);
        }
    }

    /// Every message since the position was replayed (through `on_message`, before this).
    fn recovered(&mut self, j: &Joining, answer: &Answer<'_>, replayed: u64, link: &mut Link<'_>) {
        self.retry.reset();
        let short =
            !self.stream.paused() && self.stream.recovered_short(answer.epoch, answer.offset);
        if j.reason.reported() {
            self.recovery(true, None, replayed, j.reason);
        }
        if let Some(at) = link.outbox.after_read(&self.name, true, j.sent_at, false) {
            link.timers.set(TimerKey::RoomProbe(self.id), at);
        }
        if !short {
            self.hole_retries = 0;
        } else if self.want != Some(Reason::Lag) {
            // The replay said it was whole but a hole remains: ask again, not for ever.
            self.hole_retries += 1;
            if self.hole_retries > 2 {
                self.give_up("gap", link);
            } else {
                self.want.get_or_insert(Reason::Gap);
            }
        }
    }

    /// Redis is down behind the hub: nothing is lost yet. Live messages flow; ask again later.
    fn retry_later(&mut self, j: &Joining, reason: Option<&str>, link: &mut Link<'_>) {
        self.event(RoomEvent::Recovery(Recovery {
            recovered: false,
            reason: Some(reason.unwrap_or("unavailable").to_owned()),
            replayed: 0,
            cause: j.reason.cause(),
            retrying: true,
            skipped: None,
        }));
        let delay = self.retry.next() + Duration::from_millis(250);
        link.timers
            .set(TimerKey::RoomRetry(self.id), link.now + delay);
    }

    /// The hub could not give back what was missed: said with a recovery event, and the room
    /// goes on from what the hub has.
    fn lost(&mut self, j: &Joining, answer: &Answer<'_>, replayed: u64, link: &mut Link<'_>) {
        self.retry.reset();
        let reason = answer.reason.unwrap_or("unknown");
        let epoch = answer.epoch.unwrap_or_default();
        self.recovery(false, Some(reason), replayed, j.reason);
        if reason == "epoch_changed"
            && j.reason != Reason::EpochStart
            && Some(epoch) != self.stream.epoch()
        {
            // The room's history was reset (Redis restarted empty, expiry): what came after our
            // position in the old epoch is gone. The new epoch is read from its start, so what
            // it already holds is not lost as well.
            link.outbox.mark_unknowable(&self.name);
            if self.want == Some(Reason::Epoch) {
                self.want = None; // this is the re-join it asked for
            }
            let outcome = self.stream_op(link, |s, d| s.jump(epoch, Some(0), d));
            self.result(outcome, link);
            self.send_join(JoinKind::Since, Reason::EpochStart, link);
        } else {
            link.outbox.after_read(&self.name, false, j.sent_at, true);
            let offset = answer.offset;
            let outcome = self.stream_op(link, |s, d| s.jump(epoch, offset, d));
            self.result(outcome, link);
        }
    }

    /// The room is joined on a new connection: the application hears it, presence questions
    /// waiting for it are asked.
    fn now_joined(&mut self, reason: Reason, link: &mut Link<'_>) {
        self.ever_joined = true;
        let position = self.stream.position();
        self.event(RoomEvent::Joined(Joined {
            epoch: position.as_ref().map(|p| p.epoch.clone()),
            offset: position.map(|p| p.offset),
            cause: match reason {
                Reason::Subscribe => JoinCause::Subscribe,
                Reason::Resume => JoinCause::Resume,
                _ => JoinCause::Reconnect,
            },
        }));
        self.send_presence(link);
    }

    fn on_join_error(&mut self, frame: &Inbound, link: &mut Link<'_>) {
        self.joining = None;
        self.app.counting = false;
        // Refused (forbidden, bad room, too many rooms): asking again on every reconnect would
        // not help.
        let err = HubError::new(
            ErrorCode::from_hub(frame.code.as_deref()),
            frame
                .message
                .clone()
                .unwrap_or_else(|| "join refused".to_owned()),
        );
        self.fail(err, link);
    }

    /// The hub took the connection out of the room unasked (a refreshed token no longer allows it).
    pub(crate) fn on_left(&mut self, link: &mut Link<'_>) {
        if self.ended.is_some() {
            return;
        }
        self.joined_gen = None;
        let err = HubError::new(
            ErrorCode::Hub("forbidden".to_owned()),
            format!(
                "the hub took this client out of room {} (its token no longer allows it)",
                self.name
            ),
        );
        self.fail(err, link);
    }

    fn fail(&mut self, err: HubError, link: &mut Link<'_>) {
        self.failed = Some(err.clone());
        link.outbox.fail_all(Some(&self.name), &err);
        self.fail_presence(&err, link);
        self.event(RoomEvent::Error(err));
    }
}
