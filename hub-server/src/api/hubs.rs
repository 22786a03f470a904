//! `GET /api/hubs`: every live hub with the figures of its last heartbeat (a hub that died is gone
//! once the others noticed, within `hub_timeout`).

use serde::Serialize;

use super::ApiError;
use crate::presence::HubInfo;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Hubs {
    pub hubs: Vec<HubInfo>,
}

pub async fn list(state: &AppState) -> Result<Hubs, ApiError> {
    let hubs = super::presence_bounded(state, state.presence.hubs()).await?;
    Ok(Hubs { hubs })
}
