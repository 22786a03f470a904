use futures_util::StreamExt;
use hub_client::{ClientOptions, HubClient, RoomEvent, SubscribeOptions};

#[tokio::main]
async fn main() -> Result<(), hub_client::HubError> {
    let url = std::env::var("HUB_URL").unwrap_or_else(|_| "ws://localhost:8080/ws".into());
    let hub = HubClient::connect(&url, ClientOptions::default()).await?;
    let mut lobby = hub
        .subscribe("lobby", SubscribeOptions::default().history(20))
        .await?;
    let ack = lobby.publish("hello from Rust").await?;
    println!("stored at offset {:?}", ack.offset);
    while let Some(event) = lobby.next().await {
        match event {
            RoomEvent::Message(m) => println!("{}: {}", m.user.id, m.content),
            RoomEvent::Recovery(r) if !r.recovered => eprintln!("messages lost: {r:?}"),
            _ => {}
        }
    }
    Ok(())
}
