//! `GET /api/rooms/{room}/history`: a room's stored messages, as a join would replay them —
//! `?limit=N` (the last N; no query: all that is kept) or `?since_epoch=E&since_offset=K`
//! (every message after K, all or nothing, with `recovered` and `reason` as in `joined`).

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::ApiError;
use super::request;
use crate::history::{self, History};
use crate::protocol::{Replay, Room};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Query {
    limit: Option<usize>,
    since_epoch: Option<String>,
    since_offset: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct RoomHistory {
    pub room: String,
    pub epoch: Option<String>,
    /// The room's last offset.
    pub offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovered: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The stored `message` frames, oldest first.
    pub messages: Vec<Box<RawValue>>,
}

fn replay(query: Query, history_size: usize) -> Result<Replay, ApiError> {
    match (query.limit, query.since_epoch, query.since_offset) {
        (None, None, None) => Ok(Replay::Last(history_size)),
        (Some(n), None, None) => Ok(Replay::Last(n)),
        (None, Some(epoch), Some(offset)) => Ok(Replay::Since { epoch, offset }),
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(ApiError::BadQuery(
            "limit, or since_epoch with since_offset: not both".into(),
        )),
        _ => Err(ApiError::BadQuery(
            "since_epoch and since_offset go together".into(),
        )),
    }
}

pub async fn read(state: &AppState, room: &str, query: &str) -> Result<RoomHistory, ApiError> {
    let room = Room::parse(room)?;
    let policy = state.settings.namespaces.lookup(&room)?;
    let request = replay(request::query(query)?, policy.history_size)?;
    if matches!(state.history.of(policy), History::Off) {
        return Err(ApiError::NoHistory);
    }
    let stored = state
        .history
        .read(&room, policy, &request)
        .await
        .ok_or(ApiError::Unavailable("redis is unavailable"))?;
    let (frames, outcome) = history::outcome(&request, Some(stored), policy.recovery_max);
    let messages = frames
        .iter()
        .filter_map(|frame| RawValue::from_string(frame.as_str().to_owned()).ok())
        .collect();
    Ok(RoomHistory {
        room: room.to_string(),
        epoch: outcome.epoch,
        offset: outcome.offset,
        recovered: outcome.recovered,
        reason: outcome.reason,
        messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(limit: Option<usize>, epoch: Option<&str>, offset: Option<u64>) -> Query {
        Query {
            limit,
            since_epoch: epoch.map(Into::into),
            since_offset: offset,
        }
    }

    #[test]
    fn the_query_asks_for_the_last_n_or_since_an_offset_never_both() {
        assert_eq!(replay(q(None, None, None), 100), Ok(Replay::Last(100)));
        assert_eq!(replay(q(Some(5), None, None), 100), Ok(Replay::Last(5)));
        assert_eq!(
            replay(q(None, Some("e"), Some(3)), 100),
            Ok(Replay::Since {
                epoch: "e".into(),
                offset: 3
            })
        );
        for bad in [
            q(Some(5), Some("e"), Some(3)),
            q(Some(5), None, Some(3)),
            q(None, Some("e"), None),
            q(None, None, Some(3)),
        ] {
            assert_eq!(replay(bad, 100).unwrap_err().code(), "bad_query");
        }
    }
}
