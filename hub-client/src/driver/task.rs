//! The driver's state and its loop: what it owns, what it waits on, and the timers and the
//! publish pump it runs between events. What each event does is in the sibling modules.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{Notify, broadcast, mpsc, watch};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use super::channels::{Channels, Command, Status};
use crate::backoff::Backoff;
use crate::bounded_set::BoundedSet;
use crate::connection::{Closed, Connection, Socket};
use crate::error::HubError;
use crate::events::{ClientEvent, State, StateChange};
use crate::link::Link;
use crate::options::ClientOptions;
use crate::outbox::{Outbox, OutboxOptions};
use crate::room_session::RoomSession;
use crate::timers::{TimerKey, Timers};
use crate::token::TokenSource;

type Opening = Pin<Box<dyn Future<Output = Result<Socket, Closed>> + Send>>;

/// Where the connection stands.
pub(super) enum LinkState {
    Idle,
    /// Waiting for the token provider before opening.
    Token,
    Opening(Opening),
    /// Boxed: the open connection is much larger than the other states.
    Open(Box<Connection>),
}

/// What room sessions may use (see [`Link`]), apart from the sessions themselves so both can be
/// borrowed at once.
pub(super) struct Ctx {
    pub(super) link: LinkState,
    pub(super) outbox: Outbox,
    pub(super) own_ids: BoundedSet<String>,
    pub(super) timers: Timers,
    pub(super) opts: ClientOptions,
    /// A subscription's buffer is half full: yield to the application before reading on.
    pub(super) backlog: bool,
}

impl Ctx {
    pub(super) fn link(&mut self) -> Link<'_> {
        Link {
            conn: match &mut self.link {
                LinkState::Open(conn) => Some(conn),
                _ => None,
            },
            outbox: &mut self.outbox,
            own_ids: &self.own_ids,
            timers: &mut self.timers,
            backlog: &mut self.backlog,
            opts: &self.opts,
            now: Instant::now(),
        }
    }

    /// The open connection, once welcomed.
    pub(super) fn conn(&mut self) -> Option<&mut Connection> {
        match &mut self.link {
            LinkState::Open(conn) if conn.welcomed() => Some(conn),
            _ => None,
        }
    }
}

/// Events a slow `events()` consumer may fall behind by before it misses the oldest.
const EVENTS: usize = 1024;
/// The client's own connection ids remembered (its messages in replays are its own).
const OWN_IDS: usize = 64;
/// Broadcast ids remembered to drop copies.
const BROADCAST_IDS: usize = 2000;

pub(crate) struct Driver {
    pub(super) url: String,
    pub(super) ctx: Ctx,
    pub(super) sessions: HashMap<String, RoomSession>,
    commands: mpsc::UnboundedReceiver<Command>,
    pub(super) attention: Arc<Notify>,
    events: broadcast::Sender<ClientEvent>,
    pub(super) status: watch::Sender<Status>,
    pub(super) tokens: TokenSource,
    pub(super) backoff: Backoff,
    pub(super) refresh_backoff: Backoff,
    pub(super) need_fresh_token: bool,
    /// The connection waiting for a renewed token to send.
    pub(super) refresh_waiting: Option<u64>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    pub(super) generation: u64,
    state: State,
    pub(super) started: bool,
    pub(super) closed: bool,
    pub(super) connected_at: Option<Instant>,
    next_id: u64,
    pub(super) broadcast_ids: BoundedSet<String>,
    /// Rooms the hub joined this connection to by itself (the personal room, the token's `subs`):
    /// their messages reach the application without a subscription ([`ClientEvent::Message`]).
    pub(super) hub_rooms: HashSet<String>,
    /// Ids of those messages already handed out, against a re-send.
    pub(super) hub_room_ids: BoundedSet<String>,
}

impl Driver {
    /// A driver for `url` (not connecting until started) and the handles' channels to it.
    pub(crate) fn new(url: String, opts: ClientOptions) -> (Driver, Channels) {
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (status, status_rx) = watch::channel(Status {
            state: State::Disconnected,
            connection: None,
            error: None,
        });
        let (events, events_rx) = broadcast::channel(EVENTS);
        let attention = Arc::new(Notify::new());
        let queued = Arc::new(AtomicUsize::new(0));
        let outbox = Outbox::new(
            OutboxOptions {
                publish_timeout: opts.publish_timeout,
                resend_after: opts.resend_after,
                window: opts.publish_window,
                max_message_bytes: opts.max_message_bytes,
            },
            queued.clone(),
        );
        let driver = Driver {
            url,
            tokens: TokenSource::new(opts.token.clone(), opts.connect_timeout),
            backoff: Backoff::new(opts.reconnect_delay_min, opts.reconnect_delay_max),
            refresh_backoff: Backoff::new(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(10),
            ),
            ctx: Ctx {
                link: LinkState::Idle,
                outbox,
                own_ids: BoundedSet::new(OWN_IDS),
                timers: Timers::default(),
                opts,
                backlog: false,
            },
            sessions: HashMap::new(),
            commands,
            attention: attention.clone(),
            events,
            status,
            need_fresh_token: false,
            refresh_waiting: None,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            armed: None,
            generation: 0,
            state: State::Disconnected,
            started: false,
            closed: false,
            connected_at: None,
            next_id: 0,
            broadcast_ids: BoundedSet::new(BROADCAST_IDS),
            hub_rooms: HashSet::new(),
            hub_room_ids: BoundedSet::new(BROADCAST_IDS),
        };
        let channels = Channels {
            commands: commands_tx,
            status: status_rx,
            events: events_rx,
            queued,
        };
        (driver, channels)
    }

    /// Runs until the client is closed (by a handle, by the hub, or by every handle dropped).
    pub(crate) async fn run(mut self) {
        while !self.closed {
            self.arm_sleep();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => self.shutdown(HubError::closed(), 1000, "every handle was dropped"),
                },
                () = self.attention.notified() => self.on_attention(),
                event = next_on_link(&mut self.ctx.link) => match event {
                    LinkEvent::Item(item) => self.on_socket(item),
                    LinkEvent::Opened(opened) => self.on_opened(*opened),
                },
                answer = self.tokens.answer(), if self.tokens.fetching() => self.on_token(answer),
                () = &mut self.sleep, if self.armed.is_some() => self.on_timers(),
            }
            if std::mem::take(&mut self.ctx.backlog) {
                // On a one-thread runtime the application runs only when the driver waits:
                // let it take what its buffer holds before more is read.
                tokio::task::yield_now().await;
            }
        }
    }

    pub(super) fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn arm_sleep(&mut self) {
        let next = self.ctx.timers.next_deadline();
        if next != self.armed {
            if let Some(at) = next {
                self.sleep.as_mut().reset(at);
            }
            self.armed = next;
        }
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        // The sleep fired for this deadline: arm it again whatever comes next.
        self.armed = None;
        while let Some(key) = self.ctx.timers.pop_due(now) {
            self.on_timer(key);
        }
    }

    fn on_timer(&mut self, key: TimerKey) {
        match key {
            TimerKey::Retry => self.attempt(),
            TimerKey::ConnectTimeout => self.connect_timed_out(),
            TimerKey::Refresh => self.refresh(),
            TimerKey::Pump => self.pump(),
            TimerKey::Heartbeat => self.heartbeat(),
            TimerKey::PongDeadline => self.pong_deadline(),
            TimerKey::RoomGap(id) | TimerKey::RoomProbe(id) | TimerKey::RoomRetry(id) => {
                let mut link = self.ctx.link();
                if let Some(s) = self.sessions.values_mut().find(|s| s.id == id) {
                    s.on_timer(key, &mut link);
                }
            }
            TimerKey::Publish(seq) => {
                self.ctx.outbox.expire(seq);
                self.pump();
            }
            TimerKey::Presence(id) => {
                let timeout = self.ctx.opts.publish_timeout;
                for s in self.sessions.values_mut() {
                    if s.expire_presence(id, timeout) {
                        break;
                    }
                }
            }
        }
    }

    /// Sends the publishes that may go now.
    pub(super) fn pump(&mut self) {
        let now = Instant::now();
        let Ctx {
            link,
            outbox,
            timers,
            ..
        } = &mut self.ctx;
        let LinkState::Open(conn) = link else {
            return;
        };
        if !conn.welcomed() {
            return;
        }
        let generation = conn.generation;
        let sessions = &self.sessions;
        let joined = |room: &str| sessions.get(room).is_some_and(|s| s.joined_on(generation));
        if let Some(at) = outbox.pump(&mut **conn, &joined, now) {
            timers.set_if_unset(TimerKey::Pump, at);
        }
    }

    pub(super) fn emit(&self, event: ClientEvent) {
        // Nobody listening is fine.
        let _ = self.events.send(event);
    }

    pub(super) fn set_state(&mut self, change: StateChange) {
        if self.state == change.state && change.state != State::Disconnected {
            return;
        }
        self.state = change.state;
        let connection = change.connection.clone();
        let error = change.error.clone();
        self.status.send_modify(|s| {
            s.state = change.state;
            s.connection = connection;
            if error.is_some() {
                s.error = error;
            }
        });
        self.emit(ClientEvent::State(change));
    }
}

/// What happened on the link.
enum LinkEvent {
    Item(Option<Result<WsMessage, WsError>>),
    Opened(Box<Result<Socket, Closed>>),
}

/// The next item of the open socket, or the outcome of the attempt under way; never, when there
/// is neither.
async fn next_on_link(link: &mut LinkState) -> LinkEvent {
    use futures_util::StreamExt;
    match link {
        LinkState::Open(conn) => LinkEvent::Item(conn.reader.next().await),
        LinkState::Opening(fut) => LinkEvent::Opened(Box::new(fut.as_mut().await)),
        LinkState::Idle | LinkState::Token => std::future::pending().await,
    }
}
