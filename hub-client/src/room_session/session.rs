//! A room session's own steps: the connection up and down, its messages in order, the room's
//! timers, catching up after a full buffer, and its end. Joins are in `joins`, presence questions
//! in `presence`.

use std::time::Duration;

use super::app::deliver;
use super::state::{JoinKind, Reason, RoomSession};
use crate::error::{ErrorCode, HubError};
use crate::events::{Recovery, RecoveryCause, RoomEvent};
use crate::link::Link;
use crate::message::Message;
use crate::room_stream::{Outcome, RoomStream};
use crate::timers::TimerKey;

impl RoomSession {
    /// Runs `op` on the stream with the delivery to the application.
    pub(super) fn stream_op<R>(
        &mut self,
        link: &mut Link<'_>,
        op: impl FnOnce(&mut RoomStream, &mut dyn FnMut(Message) -> bool) -> R,
    ) -> R {
        let name = &self.name;
        let app = &mut self.app;
        let outbox = &mut *link.outbox;
        let own = link.own_ids;
        let backlog = &mut *link.backlog;
        let mut to_app = |m: Message| deliver(app, outbox, own, backlog, name, m);
        op(&mut self.stream, &mut to_app)
    }

    pub(super) fn event(&self, event: RoomEvent) {
        if self.ended.is_none() {
            self.app.queue.push(event);
        }
    }

    pub(super) fn recovery(
        &self,
        recovered: bool,
        reason: Option<&str>,
        replayed: u64,
        why: Reason,
    ) {
        self.event(RoomEvent::Recovery(Recovery {
            recovered,
            reason: reason.map(str::to_owned),
            replayed,
            cause: why.cause(),
            retrying: false,
            skipped: None,
        }));
    }

    pub(super) fn clear_timers(&self, link: &mut Link<'_>) {
        for key in [
            TimerKey::RoomGap(self.id),
            TimerKey::RoomProbe(self.id),
            TimerKey::RoomRetry(self.id),
        ] {
            link.timers.clear(key);
        }
    }

    // ---- the connection ------------------------------------------------------------------------

    pub(crate) fn on_connected(&mut self, link: &mut Link<'_>) {
        self.joined_gen = None;
        self.joining = None;
        self.want = None;
        if self.ended.is_some() || self.failed.is_some() {
            return;
        }
        if self.stream.position().is_some() {
            let why = if self.ever_joined {
                Reason::Reconnect
            } else {
                Reason::Resume
            };
            self.send_join(JoinKind::Since, why, link);
        } else if self.ever_joined {
            self.send_join(JoinKind::Plain, Reason::Reconnect, link);
        } else {
            self.send_join(JoinKind::First, Reason::Subscribe, link);
        }
    }

    pub(crate) fn on_disconnected(&mut self, link: &mut Link<'_>) {
        self.joined_gen = None;
        self.joining = None;
        self.want = None;
        self.clear_timers(link);
    }

    // ---- messages ------------------------------------------------------------------------------

    pub(crate) fn on_message(&mut self, m: Message, link: &mut Link<'_>) {
        if self.ended.is_some() {
            return;
        }
        let outcome = self.stream_op(link, |s, d| s.receive(m, d));
        self.result(outcome, link);
    }

    /// Our own message was stored at `offset` (its ack).
    pub(crate) fn own_stored(&mut self, offset: u64, link: &mut Link<'_>) {
        self.stream_op(link, |s, d| s.own_stored(offset, d));
        if !self.stream.has_gap() {
            link.timers.clear(TimerKey::RoomGap(self.id));
        }
    }

    pub(super) fn result(&mut self, outcome: Outcome, link: &mut Link<'_>) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Gap => self.schedule_gap(link),
            Outcome::Epoch => self.request_rejoin(Reason::Epoch, link),
            Outcome::Overflow => self.give_up("overflow", link),
        }
    }

    /// A hole right behind an ack we wait for is most likely our own message: its ack fills it.
    pub(super) fn schedule_gap(&mut self, link: &mut Link<'_>) {
        let key = TimerKey::RoomGap(self.id);
        if link.timers.is_set(key) || self.joining.is_some() || !self.joined_now(link) {
            return;
        }
        let awaiting = link
            .generation()
            .is_some_and(|generation| link.outbox.awaiting_ack(&self.name, generation));
        let wait = if awaiting {
            link.opts.gap_wait
        } else {
            Duration::ZERO
        };
        link.timers.set(key, link.now + wait);
    }

    pub(super) fn give_up(&mut self, reason: &str, link: &mut Link<'_>) {
        let skipped = self.stream_op(link, |s, d| s.skip_holes(d));
        self.hole_retries = 0;
        self.event(RoomEvent::Recovery(Recovery {
            recovered: false,
            reason: Some(reason.to_owned()),
            replayed: 0,
            cause: RecoveryCause::Gap,
            retrying: false,
            skipped: Some(skipped),
        }));
    }

    /// One of this room's timers fired.
    pub(crate) fn on_timer(&mut self, key: TimerKey, link: &mut Link<'_>) {
        match key {
            TimerKey::RoomGap(_) if self.stream.has_gap() => self.request_rejoin(Reason::Gap, link),
            TimerKey::RoomProbe(_) if link.outbox.in_doubt(&self.name) => {
                self.request_rejoin(Reason::Probe, link)
            }
            TimerKey::RoomRetry(_) => self.request_rejoin(Reason::Retry, link),
            _ => {}
        }
    }

    /// The application took half of what its buffer held after it filled: fetch what was
    /// skipped meanwhile.
    pub(crate) fn on_caught_up(&mut self, link: &mut Link<'_>) {
        if self.ended.is_some() || !self.stream.paused() {
            return;
        }
        self.stream.resume();
        if self.stream.position().is_none() {
            // A hub keeping no history: what was skipped cannot be fetched. Said, not hidden.
            self.recovery(false, Some("no_history"), 0, Reason::Lag);
            return;
        }
        // Not joined now: the reconnect's `since` join fetches it.
        self.request_rejoin(Reason::Lag, link);
    }

    // ---- the end -------------------------------------------------------------------------------

    /// Leaves the room: no more events; its pending publishes and questions fail with
    /// `unsubscribed`.
    pub(crate) fn unsubscribe(&mut self, link: &mut Link<'_>) {
        if self.ended.is_some() {
            return;
        }
        let was_in =
            self.joined_now(link) || (self.joining.is_some() && link.generation().is_some());
        let err = HubError::new(
            ErrorCode::Unsubscribed,
            format!("room {} is unsubscribed", self.name),
        );
        self.clear_timers(link);
        if was_in {
            link.leave(&self.name);
        }
        self.fail_presence(&err, link);
        link.outbox.fail_all(Some(&self.name), &err);
        self.ended = Some(err);
        self.app.queue.end();
    }

    /// The client closed: like unsubscribing, without a leave (the socket is going).
    pub(crate) fn shutdown(&mut self, err: &HubError, link: &mut Link<'_>) {
        if self.ended.is_some() {
            return;
        }
        self.clear_timers(link);
        self.fail_presence(err, link);
        self.ended = Some(err.clone());
        self.app.queue.end();
    }
}
