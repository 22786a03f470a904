//! Orders from one hub to all: `<prefix>control` carries `{"disconnect":"<user id>"}` (from the
//! server API's `POST /api/disconnect`), which every hub carries out on its own connections.

use serde::{Deserialize, Serialize};

use crate::error::CloseReason;
use crate::hub::Hub;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Close every connection of this user with 4003.
    pub disconnect: String,
}

impl Control {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Carries out a control message received from Redis; undecodable ones are logged and dropped.
    pub fn apply(payload: &[u8], hub: &Hub) {
        match serde_json::from_slice::<Control>(payload) {
            Ok(Control { disconnect }) => {
                let closed = hub.kick_user(&disconnect, CloseReason::Disconnected);
                tracing::info!(closed, "disconnect requested through the server API");
            }
            Err(err) => tracing::warn!(%err, "dropping an undecodable control message"),
        }
    }
}
