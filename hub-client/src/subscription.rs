//! A subscribed room as the application holds it: the [`Subscription`] (a `Stream` of the room's
//! events, which unsubscribes when dropped) and [`Room`] (a cloneable handle to publish, ask who is
//! there, or unsubscribe from any task).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::oneshot;

use crate::driver::{Channels, Command};
use crate::error::{ErrorCode, HubError};
use crate::events::RoomEvent;
use crate::message::{Ack, Position};
use crate::presence::Presence;
use crate::room_queue::RoomQueue;

/// How to subscribe: plain (from now on), with the last messages first, or from a kept position.
///
/// ```
/// use hub_client::SubscribeOptions;
///
/// let late_joiner = SubscribeOptions::default().history(20);
/// # let _ = late_joiner;
/// ```
#[derive(Debug, Clone, Default)]
pub struct SubscribeOptions {
    /// The last N messages first (replayed), on the first join.
    pub history: Option<u32>,
    /// Resume from a position kept earlier ([`Room::position`]): every message after it first.
    pub since: Option<Position>,
}

impl SubscribeOptions {
    pub fn history(mut self, last: u32) -> Self {
        self.history = Some(last);
        self
    }

    pub fn since(mut self, position: Position) -> Self {
        self.since = Some(position);
        self
    }
}

/// A handle on a subscribed room, cheap to clone, usable from any task.
///
/// ```no_run
/// # async fn demo(hub: hub_client::HubClient) -> Result<(), hub_client::HubError> {
/// use hub_client::SubscribeOptions;
///
/// let sub = hub.subscribe("orders", SubscribeOptions::default()).await?;
/// let room = sub.room();
/// // Publishes are queued when called, so these go in this order even when awaited elsewhere.
/// let first = tokio::spawn(room.publish("order 1 shipped"));
/// let second = tokio::spawn(room.publish("order 2 shipped"));
/// let (a, b) = (first.await.expect("task")?, second.await.expect("task")?);
/// assert!(a.offset < b.offset);
/// let who = room.presence().await?;
/// println!("{} here", who.count);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Room {
    name: Arc<str>,
    session: u64,
    shared: Arc<Channels>,
    max_queued: usize,
}

impl std::fmt::Debug for Room {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Room").field("name", &self.name).finish()
    }
}

impl Room {
    pub(crate) fn new(name: &str, session: u64, shared: Arc<Channels>, max_queued: usize) -> Self {
        Room {
            name: name.into(),
            session,
            shared,
            max_queued,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sends `content` to the room. The publish is queued when this is called (so publishes made
    /// one after another go in that order, whenever their futures are awaited), sent once the
    /// room is joined, and the future resolves once the hub stored it: its id and offset. While
    /// disconnected it waits, bounded.
    ///
    /// # Errors
    /// A [`HubError`] with its code: `timeout` (the queue of
    /// [`max_queued`](crate::ClientOptions::max_queued) is full, or no ack within
    /// [`publish_timeout`](crate::ClientOptions::publish_timeout)), `too_large`, `unknown`,
    /// `unsubscribed`, `closed`, or the hub's (`forbidden`, `unavailable`, …); see
    /// [`HubError::maybe_stored`].
    pub fn publish(
        &self,
        content: impl Into<String>,
    ) -> impl Future<Output = Result<Ack, HubError>> + Send + 'static {
        let queued = &self.shared.queued;
        let max = self.max_queued;
        let taken = queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        let answer = if taken {
            let (reply, answer) = oneshot::channel();
            let sent = self.shared.commands.send(Command::Publish {
                session: self.session,
                content: content.into(),
                reply,
            });
            match sent {
                Ok(()) => Ok(answer),
                Err(_) => {
                    queued.fetch_sub(1, Ordering::AcqRel);
                    Err(HubError::closed().stored(false))
                }
            }
        } else {
            Err(HubError::new(
                ErrorCode::Timeout,
                format!("the publish queue is full ({max} waiting)"),
            )
            .stored(false))
        };
        async move {
            answer?
                .await
                .unwrap_or_else(|_| Err(HubError::closed().stored(false)))
        }
    }

    /// Who is in the room, across every hub (the hub's `presence` frame).
    ///
    /// # Errors
    /// `timeout` after [`publish_timeout`](crate::ClientOptions::publish_timeout),
    /// `unsubscribed`, `closed`, or the hub's.
    pub fn presence(&self) -> impl Future<Output = Result<Presence, HubError>> + Send + 'static {
        let (reply, answer) = oneshot::channel();
        let sent = self.shared.commands.send(Command::Presence {
            session: self.session,
            reply,
        });
        async move {
            sent.map_err(|_| HubError::closed())?;
            answer.await.unwrap_or_else(|_| Err(HubError::closed()))
        }
    }

    /// Where the room's stream stands: every message up to it was delivered (or was the client's
    /// own, or was declared lost by a [`Recovery`](crate::Recovery) event). `None` before the first
    /// join, when the hub keeps no history, or once unsubscribed. Keep it to resume later with
    /// [`SubscribeOptions::since`].
    pub async fn position(&self) -> Option<Position> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Position {
                session: self.session,
                reply,
            })
            .ok()?;
        answer.await.ok().flatten()
    }

    /// Leaves the room: its subscription ends; pending publishes and questions fail with
    /// `unsubscribed`.
    pub async fn unsubscribe(&self) {
        let (done, finished) = oneshot::channel();
        let sent = self.shared.commands.send(Command::Unsubscribe {
            session: self.session,
            done,
        });
        if sent.is_ok() {
            let _ = finished.await;
        }
    }
}

/// A subscribed room: a `Stream` of its [`RoomEvent`]s — each message exactly once, in offset
/// order, across reconnects; presence changes; how each re-join went. It ends when the room is
/// unsubscribed or the client closes. Dropping it unsubscribes.
///
/// It derefs to its [`Room`] for [`publish`](Room::publish) and friends; [`Subscription::room`]
/// gives a handle to use from other tasks.
///
/// ```no_run
/// # async fn demo(hub: hub_client::HubClient) -> Result<(), hub_client::HubError> {
/// use futures_util::StreamExt;
/// use hub_client::{RoomEvent, SubscribeOptions};
///
/// let mut sub = hub.subscribe("ops", SubscribeOptions::default().history(50)).await?;
/// while let Some(event) = sub.next().await {
///     match event {
///         RoomEvent::Message(m) => println!("{} {}: {}", m.offset.unwrap_or(0), m.user.id, m.content),
///         RoomEvent::Presence(d) => println!("{} joined, {} left", d.joins.len(), d.leaves.len()),
///         RoomEvent::Recovery(r) if !r.recovered => eprintln!("lost messages ({:?})", r.reason),
///         RoomEvent::Error(e) => return Err(e),
///         _ => {}
///     }
/// }
/// // Keep `sub.position()` to resume later with `SubscribeOptions::since`.
/// # Ok(())
/// # }
/// ```
pub struct Subscription {
    room: Room,
    queue: Arc<RoomQueue>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("room", &self.room.name)
            .finish()
    }
}

impl Subscription {
    pub(crate) fn new(room: Room, queue: Arc<RoomQueue>) -> Self {
        Subscription { room, queue }
    }

    /// A handle on the room for other tasks.
    pub fn room(&self) -> Room {
        self.room.clone()
    }

    /// Presence changes dropped because the application let more than 256 events other than
    /// messages wait (it can ask [`Room::presence`] instead).
    pub fn dropped_presence_events(&self) -> u64 {
        self.queue.dropped_presence()
    }

    /// How many times the application let this subscription's buffer fill
    /// ([`room_buffer`](crate::ClientOptions::room_buffer)): each time the client fetched what it
    /// skipped from the room's history (a loss, if any, is a [`Recovery`](crate::Recovery)
    /// event). A figure to watch: it means the application is slower than the room.
    pub fn overflows(&self) -> u64 {
        self.queue.overflows()
    }

    /// Leaves the room and ends the subscription.
    pub async fn unsubscribe(self) {
        self.room.unsubscribe().await;
    }
}

impl std::ops::Deref for Subscription {
    type Target = Room;

    fn deref(&self) -> &Room {
        &self.room
    }
}

impl Stream for Subscription {
    type Item = RoomEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<RoomEvent>> {
        self.queue.poll_next(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.queue.drop_subscription();
    }
}
