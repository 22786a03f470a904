//! `hubctl sub`: one JSON line per message of a room (the hub's frame as it came), each exactly
//! once and in order across reconnects, until SIGINT or SIGTERM. What the client goes through —
//! connections, losses a recovery could not avoid — is said on stderr.

use futures_util::StreamExt;
use hub_client::{ClientEvent, HubClient, RoomEvent, State, SubscribeOptions};
use tokio::io::AsyncWriteExt;

use crate::cli::Sub;

pub async fn run(args: Sub) -> Result<(), String> {
    let client = HubClient::new(&args.connection.url, crate::options(args.connection.token))
        .map_err(|e| e.to_string())?;
    let mut events = client.events();
    let options = SubscribeOptions {
        history: args.history,
        since: None,
    };
    let mut sub = client
        .subscribe(&args.room, options)
        .await
        .map_err(|e| e.to_string())?;
    client.start();
    let mut out = tokio::io::stdout();
    let stop = stop_signal();
    tokio::pin!(stop);
    let result = loop {
        tokio::select! {
            event = sub.next() => match event {
                Some(RoomEvent::Message(m)) => {
                    let line = format!("{}\n", m.raw());
                    if let Err(e) = out.write_all(line.as_bytes()).await {
                        break Err(format!("cannot write: {e}"));
                    }
                    if let Err(e) = out.flush().await {
                        break Err(format!("cannot write: {e}"));
                    }
                }
                Some(RoomEvent::Recovery(r)) if !r.recovered => {
                    let reason = r.reason.as_deref().unwrap_or("unknown");
                    if r.retrying {
                        eprintln!("hubctl: the hub cannot read {}'s history now ({reason}); asking again", args.room);
                    } else {
                        eprintln!("hubctl: messages of {} may be lost ({reason}, after a {})", args.room, r.cause);
                    }
                }
                Some(RoomEvent::Error(e)) => break Err(format!("room {}: {e}", args.room)),
                Some(_) => {}
                None => break Ok(()),
            },
            Some(event) = events.next() => match event {
                ClientEvent::State(s) => match s.state {
                    State::Connected => {
                        let hub = s.connection.map(|c| c.hub).unwrap_or_default();
                        eprintln!("hubctl: connected to {hub}");
                    }
                    State::Disconnected => eprintln!(
                        "hubctl: disconnected ({}{}), trying again in {} ms",
                        s.code.unwrap_or(1006),
                        s.reason.filter(|r| !r.is_empty()).map(|r| format!(": {r}")).unwrap_or_default(),
                        s.delay.unwrap_or_default().as_millis()
                    ),
                    State::Closed => {
                        break match s.error {
                            Some(e) => Err(e.to_string()),
                            None => Ok(()),
                        };
                    }
                    State::Connecting => {}
                },
                ClientEvent::Error(e) => eprintln!("hubctl: {e}"),
                _ => {}
            },
            () = &mut stop => break Ok(()),
        }
    };
    client.close().await;
    result
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}
