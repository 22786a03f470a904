//! One subscribed room on the wire: which join to send on each connection (the first one, or
//! `since` the room's position), what the answers mean, when to re-join on the same connection
//! (a hole in the offsets, a new epoch, Redis back after `unavailable`, a publish in doubt to
//! check, the application caught up after its buffer filled), the [`Recovery`] events that say
//! how each re-join went, and the room's presence questions. The order of messages is
//! `room_stream`'s; publishes are the outbox's.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use crate::backoff::Backoff;
use crate::bounded_set::BoundedSet;
use crate::connection::Asked;
use crate::error::{ErrorCode, HubError};
use crate::events::{JoinCause, Joined, Recovery, RecoveryCause, RoomEvent};
use crate::frame::{Inbound, Kind, outbound};
use crate::link::Link;
use crate::message::{Message, Position};
use crate::outbox::Outbox;
use crate::presence::Presence;
use crate::room_queue::RoomQueue;
use crate::room_stream::{Outcome, RoomStream};
use crate::timers::TimerKey;

/// Why a join was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reason {
    Subscribe,
    Reconnect,
    Resume,
    Gap,
    Epoch,
    /// After `epoch_changed`: the new epoch read from its start.
    EpochStart,
    Retry,
    Lag,
    Probe,
}

impl Reason {
    fn cause(self) -> RecoveryCause {
        match self {
            Reason::Subscribe | Reason::Reconnect => RecoveryCause::Reconnect,
            Reason::Resume => RecoveryCause::Resume,
            Reason::Gap => RecoveryCause::Gap,
            Reason::Epoch | Reason::EpochStart => RecoveryCause::Epoch,
            Reason::Retry => RecoveryCause::Retry,
            Reason::Lag => RecoveryCause::Lag,
            Reason::Probe => RecoveryCause::Probe,
        }
    }

    /// Causes the application hears about even when nothing was lost.
    fn reported(self) -> bool {
        matches!(
            self,
            Reason::Reconnect | Reason::Resume | Reason::Gap | Reason::Epoch | Reason::Retry
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JoinKind {
    /// The subscription's first join (with `history` if asked).
    First,
    /// A re-join without a position (a hub keeping no history).
    Plain,
    Since,
}

#[derive(Debug)]
struct Joining {
    kind: JoinKind,
    reason: Reason,
    sent_at: tokio::time::Instant,
}

/// The application's side of the room: its buffer, the ids it got, and what a re-join replayed.
#[derive(Debug)]
struct AppSide {
    queue: Arc<RoomQueue>,
    seen: BoundedSet<String>,
    counting: bool,
    replayed: u64,
}

/// Hands one message to the application, once: the client's own messages (which only a replay
/// shows) settle publishes instead, and copies are dropped. False when the buffer is full.
fn deliver(
    app: &mut AppSide,
    outbox: &mut Outbox,
    own_ids: &BoundedSet<String>,
    room: &str,
    m: Message,
) -> bool {
    if own_ids.contains(m.from.as_str()) {
        outbox.match_stored(room, &m);
        return true;
    }
    if !m.id.is_empty() && app.seen.contains(m.id.as_str()) {
        return true;
    }
    let id = m.id.clone();
    let replayed = m.replayed;
    if !app.queue.push(RoomEvent::Message(m)) {
        return false;
    }
    if !id.is_empty() {
        app.seen.insert(id);
    }
    if app.counting && replayed {
        app.replayed += 1;
    }
    true
}

struct PresenceWaiter {
    id: u64,
    /// The connection it was asked on.
    sent_gen: Option<u64>,
    reply: oneshot::Sender<Result<Presence, HubError>>,
}

pub(crate) struct RoomSession {
    pub id: u64,
    pub name: String,
    history: Option<u32>,
    stream: RoomStream,
    app: AppSide,
    ever_joined: bool,
    /// The hub refused the room: publishes fail with this.
    failed: Option<HubError>,
    /// The room ended (unsubscribed, client closed): publishes fail with this.
    ended: Option<HubError>,
    joined_gen: Option<u64>,
    joining: Option<Joining>,
    /// A re-join asked for while another was in flight.
    want: Option<Reason>,
    hole_retries: u32,
    retry: Backoff,
    presence: Vec<PresenceWaiter>,
}

impl RoomSession {
    pub(crate) fn new(
        id: u64,
        name: String,
        history: Option<u32>,
        since: Option<&Position>,
        queue: Arc<RoomQueue>,
        max_held: usize,
        dedupe: usize,
    ) -> Self {
        let mut stream = RoomStream::new(max_held);
        if let Some(p) = since {
            stream.set_position(p);
        }
        RoomSession {
            id,
            name,
            history: history.filter(|h| *h > 0),
            stream,
            app: AppSide {
                queue,
                seen: BoundedSet::new(dedupe),
                counting: false,
                replayed: 0,
            },
            ever_joined: false,
            failed: None,
            ended: None,
            joined_gen: None,
            joining: None,
            want: None,
            hole_retries: 0,
            retry: Backoff::new(Duration::from_secs(1), Duration::from_secs(10)),
            presence: Vec::new(),
        }
    }

    /// Runs `op` on the stream with the delivery to the application.
    fn stream_op<R>(
        &mut self,
        link: &mut Link<'_>,
        op: impl FnOnce(&mut RoomStream, &mut dyn FnMut(Message) -> bool) -> R,
    ) -> R {
        let name = &self.name;
        let app = &mut self.app;
        let outbox = &mut *link.outbox;
        let own = link.own_ids;
        let mut to_app = |m: Message| deliver(app, outbox, own, name, m);
        op(&mut self.stream, &mut to_app)
    }

    pub(crate) fn position(&self) -> Option<Position> {
        self.stream.position()
    }

    /// Why publishes and questions of this room fail at once, if they do.
    pub(crate) fn refusal(&self) -> Option<HubError> {
        self.ended.clone().or_else(|| self.failed.clone())
    }

    /// Joined on the current connection.
    pub(crate) fn joined_now(&self, link: &Link<'_>) -> bool {
        self.ended.is_none() && link.generation().is_some() && self.joined_gen == link.generation()
    }

    /// Joined on connection `generation` and not ended (its publishes may go).
    pub(crate) fn joined_on(&self, generation: u64) -> bool {
        self.ended.is_none() && self.joined_gen == Some(generation)
    }

    fn event(&self, event: RoomEvent) {
        if self.ended.is_none() {
            self.app.queue.push(event);
        }
    }

    fn recovery(&self, recovered: bool, reason: Option<&str>, replayed: u64, why: Reason) {
        self.event(RoomEvent::Recovery(Recovery {
            recovered,
            reason: reason.map(str::to_owned),
            replayed,
            cause: why.cause(),
            retrying: false,
            skipped: None,
        }));
    }

    fn clear_timers(&self, link: &mut Link<'_>) {
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

    // ---- joins ---------------------------------------------------------------------------------

    fn send_join(&mut self, kind: JoinKind, reason: Reason, link: &mut Link<'_>) {
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
    fn request_rejoin(&mut self, reason: Reason, link: &mut Link<'_>) {
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
        let epoch = frame.epoch.as_deref().filter(|e| !e.is_empty());
        let offset = frame.offset;
        let name = self.name.clone();

        match (j.kind, frame.recovered) {
            (JoinKind::First | JoinKind::Plain, _) => {
                let outcome = self.stream_op(link, |s, d| s.start(epoch, offset, d));
                self.result(outcome, link);
                if j.kind == JoinKind::Plain {
                    self.recovery(false, Some("no_history"), 0, j.reason);
                    link.outbox.after_read(&name, false, j.sent_at, true);
                }
            }
            (JoinKind::Since, Some(true)) => {
                self.retry.reset();
                let short = !self.stream.paused() && self.stream.recovered_short(epoch, offset);
                if j.reason.reported() {
                    self.recovery(true, None, replayed, j.reason);
                }
                if let Some(at) = link.outbox.after_read(&name, true, j.sent_at, false) {
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
            (JoinKind::Since, Some(false))
                if epoch.is_none() || frame.reason.as_deref() == Some("unavailable") =>
            {
                // Redis is down behind the hub: nothing is lost yet. Live messages flow; ask
                // again later.
                self.event(RoomEvent::Recovery(Recovery {
                    recovered: false,
                    reason: Some(
                        frame
                            .reason
                            .clone()
                            .unwrap_or_else(|| "unavailable".to_owned()),
                    ),
                    replayed: 0,
                    cause: j.reason.cause(),
                    retrying: true,
                    skipped: None,
                }));
                let delay = self.retry.next() + Duration::from_millis(250);
                link.timers
                    .set(TimerKey::RoomRetry(self.id), link.now + delay);
            }
            (JoinKind::Since, Some(false)) => {
                self.retry.reset();
                let reason = frame.reason.as_deref().unwrap_or("unknown");
                let new_epoch = epoch.unwrap_or_default();
                if reason == "epoch_changed"
                    && j.reason != Reason::EpochStart
                    && Some(new_epoch) != self.stream.epoch()
                {
                    // The room's history was reset (Redis restarted empty, expiry): what came
                    // after our position in the old epoch is gone. The new epoch is read from its
                    // start, so what it already holds is not lost as well.
                    self.recovery(false, Some(reason), replayed, j.reason);
                    link.outbox.mark_unknowable(&name);
                    if self.want == Some(Reason::Epoch) {
                        self.want = None; // this is the re-join it asked for
                    }
                    let outcome = self.stream_op(link, |s, d| s.jump(new_epoch, Some(0), d));
                    self.result(outcome, link);
                    self.send_join(JoinKind::Since, Reason::EpochStart, link);
                } else {
                    self.recovery(false, Some(reason), replayed, j.reason);
                    link.outbox.after_read(&name, false, j.sent_at, true);
                    let outcome = self.stream_op(link, |s, d| s.jump(new_epoch, offset, d));
                    self.result(outcome, link);
                }
            }
            (JoinKind::Since, None) => {
                // A since join answered without `recovered`: a hub keeping no history.
                let outcome = self.stream_op(link, |s, d| s.start(epoch, offset, d));
                self.result(outcome, link);
                self.recovery(false, Some("no_history"), 0, j.reason);
                link.outbox.after_read(&name, false, j.sent_at, true);
            }
        }

        if newly && self.ended.is_none() {
            self.ever_joined = true;
            let position = self.stream.position();
            self.event(RoomEvent::Joined(Joined {
                epoch: position.as_ref().map(|p| p.epoch.clone()),
                offset: position.map(|p| p.offset),
                cause: match j.reason {
                    Reason::Subscribe => JoinCause::Subscribe,
                    Reason::Resume => JoinCause::Resume,
                    _ => JoinCause::Reconnect,
                },
            }));
            self.send_presence(link);
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

    fn result(&mut self, outcome: Outcome, link: &mut Link<'_>) {
        match outcome {
            Outcome::Nothing => {}
            Outcome::Gap => self.schedule_gap(link),
            Outcome::Epoch => self.request_rejoin(Reason::Epoch, link),
            Outcome::Overflow => self.give_up("overflow", link),
        }
    }

    /// A hole right behind an ack we wait for is most likely our own message: its ack fills it.
    fn schedule_gap(&mut self, link: &mut Link<'_>) {
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

    fn give_up(&mut self, reason: &str, link: &mut Link<'_>) {
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

    // ---- presence ------------------------------------------------------------------------------

    /// A presence question (answered through `reply`, by its id `id`).
    pub(crate) fn ask_presence(
        &mut self,
        id: u64,
        reply: oneshot::Sender<Result<Presence, HubError>>,
        link: &mut Link<'_>,
    ) {
        if let Some(err) = self.refusal() {
            let _ = reply.send(Err(err));
            return;
        }
        self.presence.push(PresenceWaiter {
            id,
            sent_gen: None,
            reply,
        });
        link.timers
            .set(TimerKey::Presence(id), link.now + link.opts.publish_timeout);
        self.send_presence(link);
    }

    /// Asked on the connection the room is joined on; asked again on the next one if it dropped.
    fn send_presence(&mut self, link: &mut Link<'_>) {
        if !self.joined_now(link) {
            return;
        }
        let generation = link.generation();
        for w in self
            .presence
            .iter_mut()
            .filter(|w| w.sent_gen != generation)
        {
            w.sent_gen = generation;
            link.ask(
                &self.name,
                self.id,
                Asked::Presence,
                outbound::presence(&self.name),
            );
        }
    }

    fn on_presence_answer(&mut self, frame: Inbound, link: &mut Link<'_>) {
        let generation = link.generation();
        let Some(i) = self.presence.iter().position(|w| w.sent_gen == generation) else {
            return;
        };
        let w = self.presence.remove(i);
        link.timers.clear(TimerKey::Presence(w.id));
        let answer = match frame.kind {
            Kind::Presence => Ok(frame.into_presence()),
            _ => Err(HubError::new(
                ErrorCode::from_hub(frame.code.as_deref()),
                frame
                    .message
                    .unwrap_or_else(|| "presence refused".to_owned()),
            )),
        };
        let _ = w.reply.send(answer);
    }

    /// Presence question `id` timed out; false when it is not this room's.
    pub(crate) fn expire_presence(&mut self, id: u64, timeout: Duration) -> bool {
        let Some(i) = self.presence.iter().position(|w| w.id == id) else {
            return false;
        };
        let w = self.presence.remove(i);
        let _ = w.reply.send(Err(HubError::new(
            ErrorCode::Timeout,
            format!("no presence answer within {} ms", timeout.as_millis()),
        )));
        true
    }

    fn fail_presence(&mut self, err: &HubError, link: &mut Link<'_>) {
        for w in self.presence.drain(..) {
            link.timers.clear(TimerKey::Presence(w.id));
            let _ = w.reply.send(Err(err.clone()));
        }
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
            link.send(outbound::leave(&self.name));
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

    pub(crate) fn queue(&self) -> &RoomQueue {
        &self.app.queue
    }
}
