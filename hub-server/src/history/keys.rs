//! The names of a room's history keys. `{room}` is a Redis Cluster hash tag: both keys live in the
//! room's slot (with its sharded channel), so the append script never touches two nodes.

use crate::protocol::Room;

#[derive(Debug, Clone)]
pub struct HistoryKeys {
    prefix: String,
}

impl HistoryKeys {
    pub fn new(prefix: &str) -> Self {
        HistoryKeys {
            prefix: prefix.to_owned(),
        }
    }

    /// The room's list of frames and its meta hash.
    pub fn of(&self, room: &Room) -> (String, String) {
        (
            format!("{}history:{{{room}}}", self.prefix),
            format!("{}meta:{{{room}}}", self.prefix),
        )
    }
}
