//! `GET /api/hubs`: every live hub with the figures of its last heartbeat (a hub that died is gone
//! once the others noticed, within `hub_timeout`), and which of them answered: a caller that reads
//! several hubs' APIs (the status page) learns which API address is which hub.

use serde::Serialize;

use super::ApiError;
use crate::presence::HubInfo;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Hubs {
    pub hubs: Vec<HubInfo>,
    /// The instance id of the hub that answered.
    pub answered_by: String,
}

pub async fn list(state: &AppState) -> Result<Hubs, ApiError> {
    let hubs = super::presence_bounded(state, state.presence.hubs()).await?;
    Ok(Hubs {
        hubs,
        answered_by: state.hub.instance_id().to_string(),
    })
}
