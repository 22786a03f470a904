//! [`HubClient`], the application's handle on one client: start it, subscribe to rooms, watch its
//! state and events, close it. Cheap to clone; every clone is the same client. The work is done
//! by the client's driver task; the handle only sends it commands and reads what it publishes.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::Stream;
use tokio::sync::{broadcast, oneshot};

use crate::driver::{Channels, Command, Driver};
use crate::error::{ErrorCode, HubError};
use crate::events::{ClientEvent, ConnectionInfo, State};
use crate::options::ClientOptions;
use crate::subscription::{Room, SubscribeOptions, Subscription};

/// A client of a realtime-hub: one WebSocket at a time, reconnected with exponential backoff and
/// full jitter, with its rooms re-joined from where they stood (each message delivered once, in
/// order), publishes acknowledged, and its token renewed.
///
/// ```no_run
/// # async fn demo() -> Result<(), hub_client::HubError> {
/// use futures_util::StreamExt;
/// use hub_client::{ClientOptions, HubClient, RoomEvent, SubscribeOptions};
///
/// let hub = HubClient::connect("ws://localhost:8080/ws", ClientOptions::default()).await?;
/// let mut lobby = hub.subscribe("lobby", SubscribeOptions::default()).await?;
/// let ack = lobby.publish("hi").await?;
/// println!("stored as {} at offset {:?}", ack.id, ack.offset);
/// while let Some(event) = lobby.next().await {
///     if let RoomEvent::Message(m) = event {
///         println!("{}: {}", m.user.id, m.content);
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct HubClient {
    shared: Arc<Channels>,
    max_queued: usize,
}

impl std::fmt::Debug for HubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubClient")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl HubClient {
    /// A client of the hub at `url` (`ws://…/ws` or `wss://…/ws`), not connecting yet: call
    /// [`HubClient::start`] or [`HubClient::connected`], after subscribing to
    /// [`HubClient::events`] if every state change matters.
    ///
    /// # Errors
    /// `bad_argument` for a URL that is not `ws://` or `wss://`, or options that cannot work.
    ///
    /// # Panics
    /// Outside a tokio runtime (the client runs as a task of it).
    pub fn new(url: &str, options: ClientOptions) -> Result<HubClient, HubError> {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            return Err(HubError::bad_argument(format!(
                "the hub URL must start with ws:// or wss:// (got {url:?})"
            )));
        }
        options.validate()?;
        let max_queued = options.max_queued;
        let (driver, channels) = Driver::new(url.to_owned(), options);
        tokio::spawn(driver.run());
        Ok(HubClient {
            shared: Arc::new(channels),
            max_queued,
        })
    }

    /// A client of the hub at `url`, connected: returns once the hub welcomed it. While the hub
    /// cannot be reached it keeps trying (bound it with `tokio::time::timeout` if you must).
    ///
    /// # Errors
    /// `bad_argument` as [`HubClient::new`]; `unauthorized` when the hub refuses a token that
    /// cannot be renewed.
    pub async fn connect(url: &str, options: ClientOptions) -> Result<HubClient, HubError> {
        let client = HubClient::new(url, options)?;
        client.connected().await?;
        Ok(client)
    }

    /// Starts connecting (once; later calls do nothing).
    pub fn start(&self) {
        let _ = self.shared.commands.send(Command::Start);
    }

    /// Starts connecting if not yet, and waits until the client is connected: what the hub's
    /// welcome said.
    ///
    /// # Errors
    /// The reason the client closed for good before (`closed`, `unauthorized`, …).
    pub async fn connected(&self) -> Result<ConnectionInfo, HubError> {
        self.start();
        let mut status = self.shared.status.clone();
        let seen = status
            .wait_for(|s| s.state == State::Connected || s.state == State::Closed)
            .await
            .map_err(|_| HubError::closed())?;
        match (&seen.connection, seen.state) {
            (Some(info), State::Connected) => Ok(info.clone()),
            _ => Err(seen.error.clone().unwrap_or_else(HubError::closed)),
        }
    }

    /// The connection state now.
    pub fn state(&self) -> State {
        self.shared.status.borrow().state
    }

    /// What the welcome said on the current connection; `None` while not connected.
    pub fn connection(&self) -> Option<ConnectionInfo> {
        let status = self.shared.status.borrow();
        (status.state == State::Connected)
            .then(|| status.connection.clone())
            .flatten()
    }

    /// The client's events from now on: state changes, broadcasts, renewed tokens, errors. A
    /// consumer more than 1024 events behind misses the oldest. The stream ends after the client
    /// closed.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), hub_client::HubError> {
    /// use futures_util::StreamExt;
    /// use hub_client::{ClientEvent, ClientOptions, HubClient, State};
    ///
    /// let hub = HubClient::new("ws://localhost:8080/ws", ClientOptions::default())?;
    /// let mut events = hub.events(); // before start: every state change is seen
    /// hub.start();
    /// while let Some(event) = events.next().await {
    ///     match event {
    ///         ClientEvent::State(s) if s.state == State::Disconnected => {
    ///             eprintln!("lost the hub ({:?}), again in {:?}", s.code, s.delay)
    ///         }
    ///         ClientEvent::Broadcast(b) => println!("to all: {}", b.content),
    ///         _ => {}
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn events(&self) -> ClientEvents {
        ClientEvents::new(self.shared.events.resubscribe())
    }

    /// Subscribes to `room`: joined now if connected, else once connected, and again after every
    /// reconnect with what was missed. Dropping the [`Subscription`] unsubscribes.
    ///
    /// # Errors
    /// `bad_argument` for a bad room name, `already_subscribed`, `closed`.
    pub async fn subscribe(
        &self,
        room: &str,
        options: SubscribeOptions,
    ) -> Result<Subscription, HubError> {
        check_room(room)?;
        let (reply, answer) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Subscribe {
                room: room.to_owned(),
                history: options.history,
                since: options.since,
                reply,
            })
            .map_err(|_| HubError::closed())?;
        let (session, queue) = answer.await.map_err(|_| HubError::closed())??;
        let handle = Room::new(room, session, self.shared.clone(), self.max_queued);
        Ok(Subscription::new(handle, queue))
    }

    /// Closes the client for good: the socket (with a close frame), every timer; every
    /// subscription ends; pending publishes and questions fail with `closed`.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.shared.commands.send(Command::Close { done }).is_ok() {
            let _ = closed.await;
        }
    }
}

/// Room names: 1–64 of `A-Z a-z 0-9 _ . : -`, as the hub accepts them.
fn check_room(room: &str) -> Result<(), HubError> {
    let ok = (1..=64).contains(&room.len())
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(HubError::new(
            ErrorCode::BadArgument,
            format!("bad room name {room:?}: use 1-64 of A-Z a-z 0-9 _ . : -"),
        ))
    }
}

/// The stream of [`HubClient::events`].
pub struct ClientEvents {
    inner: Pin<Box<dyn Stream<Item = ClientEvent> + Send>>,
}

impl std::fmt::Debug for ClientEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientEvents")
    }
}

impl ClientEvents {
    fn new(rx: broadcast::Receiver<ClientEvent>) -> Self {
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(event) => return Some((event, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        ClientEvents {
            inner: Box::pin(stream),
        }
    }
}

impl Stream for ClientEvents {
    type Item = ClientEvent;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<ClientEvent>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_as_the_hub_takes_them() {
        assert!(check_room("team-42.ops:x_y").is_ok());
        assert!(check_room(&"a".repeat(64)).is_ok());
        for bad in ["", "a b", "é", &"a".repeat(65)] {
            let err = check_room(bad).expect_err(bad);
            assert_eq!(err.code(), &ErrorCode::BadArgument);
        }
    }

    /// Handles go to any task, and publishes can be spawned.
    #[test]
    fn handles_and_futures_are_send() {
        fn send_sync<T: Send + Sync + 'static>() {}
        fn send_static<T: Send + 'static>(_: &T) {}
        fn sendable<T: Send>(_: &T) {}
        send_sync::<HubClient>();
        send_sync::<Subscription>();
        send_sync::<Room>();
        fn send<T: Send + 'static>() {}
        send::<ClientEvents>();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let client =
                HubClient::new("ws://127.0.0.1:9/ws", ClientOptions::default()).expect("client");
            sendable(&client.subscribe("r", SubscribeOptions::default()));
            sendable(&client.connected());
            sendable(&client.close());
            let sub = client
                .subscribe("r", SubscribeOptions::default())
                .await
                .expect("subscribed");
            send_static(&sub.publish("spawnable"));
            send_static(&sub.presence());
        });
    }

    #[tokio::test]
    async fn closing_ends_the_event_stream_and_fails_what_waits() {
        use futures_util::StreamExt;
        let client =
            HubClient::new("ws://127.0.0.1:9/ws", ClientOptions::default()).expect("client");
        let mut events = client.events();
        let sub = client
            .subscribe("r", SubscribeOptions::default())
            .await
            .expect("subscribed while not connected");
        let publish = sub.publish("queued while disconnected");
        client.close().await;
        let err = publish.await.expect_err("closed");
        assert_eq!(
            (err.code(), err.maybe_stored()),
            (&ErrorCode::Closed, Some(false))
        );
        let mut seen = Vec::new();
        while let Some(event) = events.next().await {
            if let ClientEvent::State(s) = event {
                seen.push(s.state);
            }
        }
        assert_eq!(seen, [State::Closed]);
        let err = client.connected().await.expect_err("closed");
        assert_eq!(err.code(), &ErrorCode::Closed);
        let err = sub.publish("after").await.expect_err("closed");
        assert_eq!(err.code(), &ErrorCode::Closed);
    }

    #[tokio::test]
    async fn only_websocket_urls_and_valid_options() {
        let err = HubClient::new("http://x", ClientOptions::default()).expect_err("http");
        assert_eq!(err.code(), &ErrorCode::BadArgument);
        let err = HubClient::new(
            "ws://x",
            ClientOptions {
                max_queued: 0,
                ..ClientOptions::default()
            },
        )
        .expect_err("max_queued 0");
        assert_eq!(err.code(), &ErrorCode::BadArgument);
    }
}
