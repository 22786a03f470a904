//! `GET /api/rooms` (every room with members on some live hub, with its user and connection
//! counts) and `GET /api/rooms/{room}/presence` (who is in one room, across every hub), answered
//! from [`crate::presence`]: any hub answers for the whole cluster. Rooms whose namespace keeps no
//! presence (`presence = false`, personal rooms by default) are in neither: `404 no_presence`.

use serde::Serialize;

use super::ApiError;
use crate::presence::{RoomPresence, RoomSummary};
use crate::protocol::Room;
use crate::state::AppState;

#[derive(Debug, Serialize)]
pub struct Rooms {
    pub rooms: Vec<RoomSummary>,
}

pub async fn list(state: &AppState) -> Result<Rooms, ApiError> {
    let rooms = super::presence_bounded(state, state.presence.rooms()).await?;
    Ok(Rooms { rooms })
}

pub async fn presence(state: &AppState, room: &str) -> Result<RoomPresence, ApiError> {
    let room = Room::parse(room)?;
    if !state.settings.namespaces.lookup(&room)?.presence {
        return Err(ApiError::NoPresence);
    }
    super::presence_bounded(state, state.presence.room(&room)).await
}
