//! One client connection: registers it with the hub, starts its writer, reads and executes its
//! frames, enforces its limits, and on the way out takes the single cleanup path. Its parts:
//! [`admission`] (who the client is), [`reader`] (the read loop), [`commands`] (what each frame
//! does), all on the one [`state::Session`] of the connection.

mod admission;
mod commands;
mod pending;
mod reader;
mod state;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::{Stream, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use uuid::Uuid;

use crate::deflate;
use crate::hub::ClientId;
use crate::outbox::{Kick, QueuedBytes, Recipient};
use crate::rate_limit::TokenBucket;
use crate::state::AppState;
use crate::transport::Transport;
use crate::writer;
use state::Session;

/// How long a closing connection gets to send its last frames and finish the close handshake.
const WRITER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs one connection to its end. `socket` is any WebSocket (split into halves here) or what
/// stands for one (`sse::socket`: the transport is this parameter, the session is the same);
/// `bearer` is the token of the upgrade's `Authorization` header (of `POST /sse/session`), if
/// any; `deflate` is the compression the handshake agreed to.
pub async fn run<S>(
    socket: S,
    state: AppState,
    ip: IpAddr,
    bearer: Option<String>,
    deflate: Option<deflate::Connection>,
    transport: Transport,
) where
    S: Stream<Item = Result<Message, WsError>>
        + futures_util::Sink<Message, Error = WsError>
        + Unpin
        + Send
        + 'static,
{
    let settings = state.settings.clone();
    let (sink, stream) = state.metrics.accepted(socket).split();
    state.metrics.transport_opened(transport);
    let (outbound, inflating) = deflate.map(|d| d.split(settings.max_message_bytes)).unzip();
    let mut stream = deflate::Inbound::new(stream, inflating);
    let client_id: ClientId = Uuid::new_v4().to_string().into();
    let (tx, rx) = mpsc::channel(settings.send_queue);
    let (close_tx, close_rx) = oneshot::channel();
    let kick = Arc::new(Kick::default());
    let me = Recipient {
        tx,
        queued: QueuedBytes::new(settings.send_queue_bytes),
        kick: kick.clone(),
    };
    // Echo mode (the hub-echo conformance binary only): messages go back through the writer.
    let (echo, echo_rx) = match settings.echo {
        true => {
            let (tx, rx) = mpsc::channel(16);
            (Some(tx), Some(rx))
        }
        false => (None, None),
    };
    let mut writer = tokio::spawn(writer::run(
        sink,
        rx,
        me.queued.clone(),
        close_rx,
        transport.keepalive(settings.ping_interval),
        echo_rx,
        outbound,
    ));
    tracing::debug!(client_id = %client_id, %ip, ?transport, "client connected");

    let mut session = Session {
        state: &state,
        client_id: &client_id,
        me: &me,
        ip,
        bucket: TokenBucket::new(
            settings.rate_limit_per_sec,
            settings.rate_limit_burst,
            Instant::now(),
        ),
        rejected_in_a_row: 0,
        identity: None,
        user_slot: None,
        deadline: None,
        echo,
        pending: pending::Pending::default(),
    };
    let started = match session.echo {
        Some(_) => Ok(()),
        None => session.start(bearer.as_deref()),
    };
    let reason = match started {
        Ok(()) => session.read_until_closed(&mut stream, &kick).await,
        Err(reason) => Some(reason),
    };

    // The one cleanup path: out of the hub (its Sender clones go), the user's place given back,
    // counted as closed (and why) as soon as it is out — a slow consumer may take the close
    // handshake's whole grace to go — then tell the writer why.
    state.hub.remove(&client_id);
    drop(session);
    drop(me);
    state.metrics.closed(reason);
    state.metrics.transport_closed(transport);
    match reason {
        Some(reason) => {
            let _ = close_tx.send(reason);
            // Finish the close handshake: keep reading (and discarding) until the client answers
            // our close frame. Dropping a socket with unread input makes the kernel send a reset,
            // which can destroy the error and close frames still in flight to the client.
            let drain = async { while let Some(Ok(_)) = stream.next().await {} };
            let both = async { tokio::join!(&mut writer, drain) };
            if tokio::time::timeout(WRITER_GRACE, both).await.is_err() {
                writer.abort();
            }
        }
        // The client left on its own: dropping the sender ends the writer without a close frame.
        None => {
            drop(close_tx);
            if tokio::time::timeout(WRITER_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        }
    }
    tracing::debug!(client_id = %client_id, ?reason, "client disconnected");
}
