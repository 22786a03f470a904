//! The connection's life: an attempt (a token first, if the client has one), the welcome, the
//! close and the wait before the next attempt (exponential backoff, full jitter), the token renewed
//! on the open socket, the heartbeat that notices a silent peer, and the end.

use std::time::Duration;

use tokio::time::Instant;

use super::channels::Status;
use super::task::{Driver, LinkState};
use crate::connection::{self, Closed, Connection};
use crate::error::{ErrorCode, HubError};
use crate::events::{ClientEvent, ConnectionInfo, State, StateChange};
use crate::frame::{Inbound, outbound};
use crate::timers::{TimerKey, Timers};

/// The room every connection starts in.
const DEFAULT_ROOM: &str = "general";

/// How long a close frame may take to go out when the client closes.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

impl Driver {
    // ---- connecting ----------------------------------------------------------------------------

    pub(super) fn start(&mut self) {
        if !self.started && !self.closed {
            self.started = true;
            self.attempt();
        }
    }

    pub(super) fn attempt(&mut self) {
        let now = Instant::now();
        self.ctx.timers.clear(TimerKey::Retry);
        self.generation += 1;
        let mut change = StateChange::new(State::Connecting);
        change.attempt = Some(self.backoff.attempt() + 1);
        self.set_state(change);
        self.ctx.timers.set(
            TimerKey::ConnectTimeout,
            now + self.ctx.opts.connect_timeout,
        );
        if !self.tokens.present() {
            self.open(None);
            return;
        }
        match self.tokens.ready(self.need_fresh_token, now) {
            Some(token) => self.open(Some(token)),
            None => {
                self.tokens.fetch();
                self.ctx.link = LinkState::Token;
            }
        }
    }

    fn open(&mut self, token: Option<String>) {
        self.ctx.link = LinkState::Opening(Box::pin(connection::open(self.url.clone(), token)));
    }

    /// The token provider answered (for a connection attempt, a renewal, or both).
    pub(super) fn on_token(&mut self, answer: Result<String, String>) {
        let for_attempt = matches!(self.ctx.link, LinkState::Token);
        let for_refresh = self.refresh_waiting.take();
        match answer {
            Ok(token) => {
                if for_attempt {
                    self.need_fresh_token = false;
                    self.open(Some(token.clone()));
                }
                if let Some(generation) = for_refresh
                    && let Some(conn) = self.ctx.conn().filter(|c| c.generation == generation)
                {
                    conn.send_control(outbound::auth(&token), Instant::now());
                    self.refresh_backoff.reset();
                    // Re-armed now rather than on the answer, so a lost `authenticated` does not
                    // stop renewals.
                    self.schedule_refresh(None);
                }
            }
            Err(why) => {
                self.emit(ClientEvent::Error(HubError::new(ErrorCode::Token, why)));
                if for_attempt {
                    self.ctx.link = LinkState::Idle;
                    self.ctx.timers.clear(TimerKey::ConnectTimeout);
                    self.retry(Closed::local("no token"));
                }
                if let Some(generation) = for_refresh
                    && self.ctx.conn().is_some_and(|c| c.generation == generation)
                {
                    // Keep trying until the hub gives up on the old token (4002); the reconnect
                    // then asks again.
                    let delay = self.refresh_backoff.next() + Duration::from_millis(100);
                    self.ctx
                        .timers
                        .set(TimerKey::Refresh, Instant::now() + delay);
                }
            }
        }
    }

    pub(super) fn on_opened(&mut self, opened: Result<connection::Socket, Closed>) {
        match opened {
            Ok(socket) => {
                let now = Instant::now();
                let opts = &self.ctx.opts;
                let conn = Connection::new(
                    socket,
                    self.generation,
                    opts.send_rate,
                    opts.send_burst,
                    now,
                );
                if !opts.ping_interval.is_zero() {
                    let at = now + opts.ping_interval;
                    self.ctx.timers.set(TimerKey::Heartbeat, at);
                }
                self.ctx.link = LinkState::Open(Box::new(conn));
            }
            Err(closed) => {
                self.ctx.link = LinkState::Idle;
                self.on_close(closed, false);
            }
        }
    }

    /// No welcome within `connect_timeout`: the attempt is given up.
    pub(super) fn connect_timed_out(&mut self) {
        if self.ctx.conn().is_some() {
            return;
        }
        let why = Closed::local(format!(
            "no welcome within {} ms",
            self.ctx.opts.connect_timeout.as_millis()
        ));
        self.drop_connection(why);
    }

    pub(super) fn on_welcome(&mut self, frame: Inbound) {
        let now = Instant::now();
        self.ctx.timers.clear(TimerKey::ConnectTimeout);
        self.hub_rooms = frame
            .rooms
            .iter()
            .flatten()
            .filter(|r| *r != DEFAULT_ROOM)
            .cloned()
            .collect();
        let info = ConnectionInfo {
            client_id: frame.client_id.clone().unwrap_or_default(),
            hub: frame.hub.clone().unwrap_or_default(),
            instance_id: frame.instance_id.clone().unwrap_or_default(),
            user: frame.user.clone(),
            rooms: self.hub_rooms.iter().cloned().collect(),
        };
        let LinkState::Open(conn) = &mut self.ctx.link else {
            return;
        };
        conn.client_id = Some(info.client_id.clone());
        self.ctx.own_ids.insert(info.client_id.clone());
        self.connected_at = Some(now);
        let mut change = StateChange::new(State::Connected);
        change.connection = Some(info);
        self.set_state(change);
        // Every connection starts in `general`; a client that did not ask for it leaves (no
        // traffic, not counted in its presence).
        let in_general = frame
            .rooms
            .as_ref()
            .is_some_and(|rooms| rooms.iter().any(|r| r == DEFAULT_ROOM));
        if in_general
            && !self.sessions.contains_key(DEFAULT_ROOM)
            && let Some(conn) = self.ctx.conn()
        {
            conn.send_leave(DEFAULT_ROOM, now);
        }
        let mut link = self.ctx.link();
        for session in self.sessions.values_mut() {
            session.on_connected(&mut link);
        }
        self.pump();
        self.schedule_refresh(None);
    }

    /// Drops the current connection (or attempt) at once and handles its end.
    pub(super) fn drop_connection(&mut self, why: Closed) {
        let link = std::mem::replace(&mut self.ctx.link, LinkState::Idle);
        let was_connected = match link {
            LinkState::Open(conn) => {
                let welcomed = conn.welcomed();
                conn.abort();
                welcomed
            }
            _ => false,
        };
        self.on_close(why, was_connected);
    }

    /// The connection (or attempt) ended; the link is idle already.
    fn on_close(&mut self, closed: Closed, was_connected: bool) {
        for key in [
            TimerKey::ConnectTimeout,
            TimerKey::Refresh,
            TimerKey::Heartbeat,
            TimerKey::PongDeadline,
            TimerKey::Pump,
        ] {
            self.ctx.timers.clear(key);
        }
        self.refresh_waiting = None;
        let mut link = self.ctx.link();
        for session in self.sessions.values_mut() {
            session.on_disconnected(&mut link);
        }
        self.ctx.outbox.connection_lost();
        if self.closed {
            return;
        }
        // A connection that lasted is a fresh start; one that keeps dropping right after its
        // welcome (a crashing hub) keeps growing the delay instead of hammering it.
        if was_connected
            && self
                .connected_at
                .is_some_and(|at| at.elapsed() >= self.ctx.opts.reconnect_delay_max)
        {
            self.backoff.reset();
        }
        match closed.code {
            4001 | 4002 if !self.tokens.renewable() => {
                let why = if self.tokens.present() {
                    "the hub refused the token and it cannot be renewed (a fixed string)"
                } else {
                    "the hub requires a token"
                };
                let err = HubError::new(
                    ErrorCode::Unauthorized,
                    format!("{why}: {}", describe(&closed)),
                );
                self.shutdown(err, closed.code, &closed.reason);
                return;
            }
            4001 | 4002 => {
                self.tokens.invalidate();
                self.need_fresh_token = true;
            }
            4003 => {
                let err = HubError::new(
                    ErrorCode::DisconnectedByServer,
                    format!("disconnected by the server: {}", describe(&closed)),
                );
                self.shutdown(err, closed.code, &closed.reason);
                return;
            }
            _ => {}
        }
        self.retry(closed);
    }

    fn retry(&mut self, closed: Closed) {
        let delay = self.backoff.next();
        let mut change = StateChange::new(State::Disconnected);
        change.code = Some(closed.code);
        change.reason = Some(closed.reason);
        change.delay = Some(delay);
        self.set_state(change);
        self.ctx.timers.set(TimerKey::Retry, Instant::now() + delay);
    }

    /// Closes for good: the socket, every timer; pending publishes and questions fail with
    /// `err`'s code.
    pub(super) fn shutdown(&mut self, err: HubError, code: u16, reason: &str) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.ctx.timers = Timers::default();
        if let LinkState::Open(conn) = std::mem::replace(&mut self.ctx.link, LinkState::Idle) {
            conn.close(1000, "client closed", CLOSE_GRACE);
        }
        self.ctx.outbox.fail_all(None, &err);
        let mut link = self.ctx.link();
        for session in self.sessions.values_mut() {
            session.shutdown(&err, &mut link);
        }
        self.sessions.clear();
        let by_hub = *err.code() != ErrorCode::Closed;
        if by_hub {
            self.emit(ClientEvent::Error(err.clone()));
        }
        let mut change = StateChange::new(State::Closed);
        change.code = Some(code);
        change.reason = Some(reason.to_owned());
        change.error = by_hub.then_some(err);
        self.set_state(change);
        self.status
            .send_modify(|s: &mut Status| s.connection = None);
    }

    // ---- the token on an open socket -----------------------------------------------------------

    pub(super) fn schedule_refresh(&mut self, hub_exp: Option<u64>) {
        self.ctx.timers.clear(TimerKey::Refresh);
        if !self.tokens.renewable() || self.ctx.conn().is_none() {
            return;
        }
        if let Some(at) = self.tokens.due_at(hub_exp) {
            self.ctx.timers.set(TimerKey::Refresh, at);
        }
    }

    pub(super) fn refresh(&mut self) {
        let Some(generation) = self.ctx.conn().map(|c| c.generation) else {
            return;
        };
        self.refresh_waiting = Some(generation);
        self.tokens.fetch();
    }

    // ---- the heartbeat -------------------------------------------------------------------------

    /// Every `ping_interval`: a frame was heard since the last tick, or the hub is asked for one.
    pub(super) fn heartbeat(&mut self) {
        let now = Instant::now();
        let interval = self.ctx.opts.ping_interval;
        let timeout = self.ctx.opts.pong_timeout;
        let LinkState::Open(conn) = &mut self.ctx.link else {
            return;
        };
        self.ctx.timers.set(TimerKey::Heartbeat, now + interval);
        if conn.heard {
            conn.heard = false;
            conn.ping_sent = false;
            self.ctx.timers.clear(TimerKey::PongDeadline);
            return;
        }
        if conn.ping_sent {
            return;
        }
        conn.ping_sent = true;
        conn.send_control(outbound::ping(), now);
        self.ctx.timers.set(TimerKey::PongDeadline, now + timeout);
    }

    /// No frame at all since our ping: a peer that vanished without a FIN (a cut cable, a NAT
    /// that forgot us) looks open for minutes otherwise.
    pub(super) fn pong_deadline(&mut self) {
        let LinkState::Open(conn) = &self.ctx.link else {
            return;
        };
        if conn.heard {
            return;
        }
        let why = Closed::local(format!(
            "no frame from the hub within {} ms of a ping",
            self.ctx.opts.pong_timeout.as_millis()
        ));
        self.drop_connection(why);
    }
}

fn describe(closed: &Closed) -> String {
    if closed.reason.is_empty() {
        closed.code.to_string()
    } else {
        format!("{} ({})", closed.reason, closed.code)
    }
}
