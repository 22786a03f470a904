//! `hubctl pub`: connect, join the room, publish one message, print the hub's ack
//! (`{"id":…,"offset":…}`), close. Fails (exit 1) with the error's code when the hub refuses it
//! or does not acknowledge it in time.

use hub_client::{ClientOptions, HubClient, SubscribeOptions};

use crate::cli::Pub;

pub async fn run(args: Pub) -> Result<(), String> {
    let options = ClientOptions {
        publish_timeout: args.timeout,
        ..crate::options(args.connection.token)
    };
    let client = HubClient::new(&args.connection.url, options).map_err(|e| e.to_string())?;
    let attempt = async {
        let room = client
            .subscribe(&args.room, SubscribeOptions::default())
            .await
            .map_err(|e| e.to_string())?;
        client.connected().await.map_err(|e| e.to_string())?;
        room.publish(args.text.as_str())
            .await
            .map_err(|e| e.to_string())
    };
    let ack = match tokio::time::timeout(args.timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "timeout: not acknowledged within {}",
            humantime::format_duration(args.timeout)
        )),
    };
    client.close().await;
    let ack = ack?;
    let line = serde_json::to_string(&ack).map_err(|e| e.to_string())?;
    println!("{line}");
    Ok(())
}
