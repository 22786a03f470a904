//! `hubctl api`: one call of the hub's server API; its JSON answer on stdout, one line.

use hub_client::User;
use hub_client::api::{ApiClient, HistoryQuery};
use serde_json::Value;

use crate::cli::{Api, ApiCall, AsUser};

fn user(as_user: AsUser) -> Option<User> {
    as_user.user_id.map(|id| User {
        id,
        name: as_user.user_name,
    })
}

pub async fn run(args: Api) -> Result<(), String> {
    let api = ApiClient::new(&args.url, &args.key)
        .map_err(|e| e.to_string())?
        .with_timeout(args.timeout);
    let json = |v: Result<Value, hub_client::api::ApiError>| v.map_err(|e| e.to_string());
    let answer: Value = match args.call {
        ApiCall::Publish {
            room,
            text,
            user: as_user,
            idempotency_key,
        } => {
            let u = user(as_user);
            let published = api
                .publish(&room, &text, u.as_ref(), idempotency_key.as_deref())
                .await
                .map_err(|e| e.to_string())?;
            to_json(&published)?
        }
        ApiCall::PublishBatch { file } => return crate::batch::run(&api, &file).await,
        ApiCall::Broadcast {
            text,
            user: as_user,
        } => {
            let u = user(as_user);
            json(api.broadcast(&text, u.as_ref()).await)?
        }
        ApiCall::Rooms => json(api.rooms().await)?,
        ApiCall::Presence { room } => {
            let presence = api.presence(&room).await.map_err(|e| e.to_string())?;
            to_json(&presence)?
        }
        ApiCall::History {
            room,
            limit,
            since_epoch,
            since_offset,
        } => {
            let query = HistoryQuery {
                limit,
                since: since_epoch.zip(since_offset),
            };
            let history = api
                .history(&room, &query)
                .await
                .map_err(|e| e.to_string())?;
            to_json(&history)?
        }
        ApiCall::Hubs => json(api.hubs().await)?,
        ApiCall::Disconnect { user } => json(api.disconnect(&user).await)?,
    };
    println!("{answer}");
    Ok(())
}

/// A typed answer back to JSON.
fn to_json<T: serde::Serialize>(value: &T) -> Result<Value, String> {
    serde_json::to_value(value).map_err(|e| e.to_string())
}
