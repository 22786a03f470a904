//! `POST /api/disconnect` `{"user"}`: every connection of that user, on every hub, is closed with
//! 4003 (the order goes to all hubs over Redis, see [`crate::bridge::control`]).

use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::state::AppState;

const MAX_USER_ID: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DisconnectRequest {
    pub user: String,
}

#[derive(Debug, Serialize)]
pub struct Disconnected {
    pub user: String,
    pub disconnected: bool,
}

pub async fn disconnect(
    state: &AppState,
    request: DisconnectRequest,
) -> Result<Disconnected, ApiError> {
    let user = request.user;
    if user.is_empty() || user.len() > MAX_USER_ID || user.chars().any(char::is_control) {
        return Err(ApiError::bad_field(
            "bad_user",
            format!("user must be 1-{MAX_USER_ID} bytes without control characters"),
        ));
    }
    if !state.bridge.disconnect_user(&state.hub, &user).await {
        return Err(ApiError::Unavailable(
            "redis is unavailable: the user's connections on this hub were closed, other hubs were not told",
        ));
    }
    tracing::info!(%user, "disconnect ordered through the server API");
    Ok(Disconnected {
        user,
        disconnected: true,
    })
}
