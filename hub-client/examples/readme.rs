use std::time::Duration;

use futures_util::StreamExt;
use hub_client::{ClientOptions, HubClient, RoomEvent, SubscribeOptions};

#[tokio::main]
async fn main() -> Result<(), hub_client::HubError> {
    let url = std::env::var("HUB_URL").unwrap_or_else(|_| "ws://localhost:8080/ws".into());
    let hub = HubClient::connect(&url, ClientOptions::default()).await?;
    let options = SubscribeOptions::default().history(20);
    let mut lobby = hub.subscribe("lobby", options).await?;
    let ack = lobby.publish("hello from Rust").await?;
    println!("stored at offset {:?}", ack.offset);
    // Print what arrives for two seconds (a real app keeps reading: exactly once, in order).
    let until = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(until);
    loop {
        tokio::select! {
            Some(event) = lobby.next() => match event {
                RoomEvent::Message(m) => println!("{}: {}", m.user.id, m.content),
                RoomEvent::Recovery(r) if !r.recovered => eprintln!("messages lost: {r:?}"),
                _ => {}
            },
            _ = &mut until => break,
        }
    }
    hub.close().await;
    Ok(())
}
