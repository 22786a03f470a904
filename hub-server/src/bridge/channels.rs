//! The Redis channels a hub uses and the targets they carry: one channel per room, one for
//! broadcasts, one for control orders between hubs, all under one prefix.

use crate::protocol::Room;

/// Where a message goes: one room on every hub, or every client on every hub.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Room(Room),
    Broadcast,
}

/// Maps targets to Redis channel names and back under one prefix.
///
/// On a Redis Cluster (`sharded`) a room's channel is `<prefix>room:{<room>}`: the `{room}` hash
/// tag puts it in the slot of the room's history and presence keys, so the append script may
/// SPUBLISH to it. On one Redis it stays `<prefix>room:<room>`, as it always was. The broadcast
/// and control channels keep their names; on a cluster they are sharded channels too (each in the
/// one slot its name hashes to), so every message of a hub goes through SPUBLISH / SSUBSCRIBE.
#[derive(Debug, Clone)]
pub struct Channels {
    prefix: String,
    sharded: bool,
}

impl Channels {
    pub fn new(prefix: &str) -> Self {
        Channels {
            prefix: prefix.to_owned(),
            sharded: false,
        }
    }

    /// The channels of a hub on a Redis Cluster (sharded pub/sub).
    pub fn sharded(prefix: &str) -> Self {
        Channels {
            prefix: prefix.to_owned(),
            sharded: true,
        }
    }

    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The command that publishes on these channels.
    pub fn publish_command(&self) -> &'static str {
        if self.sharded { "SPUBLISH" } else { "PUBLISH" }
    }

    pub fn name(&self, target: &Target) -> String {
        match target {
            Target::Room(room) if self.sharded => format!("{}room:{{{}}}", self.prefix, room),
            Target::Room(room) => format!("{}room:{}", self.prefix, room),
            Target::Broadcast => format!("{}broadcast", self.prefix),
        }
    }

    /// Where hubs send each other orders (see `control`).
    pub fn control(&self) -> String {
        format!("{}control", self.prefix)
    }

    pub fn target(&self, channel: &str) -> Option<Target> {
        let rest = channel.strip_prefix(&self.prefix)?;
        if rest == "broadcast" {
            return Some(Target::Broadcast);
        }
        let room = rest.strip_prefix("room:")?;
        let room = match self.sharded {
            true => room.strip_prefix('{')?.strip_suffix('}')?,
            false => room,
        };
        Room::parse(room).ok().map(Target::Room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_link::key_slot;

    #[test]
    fn channel_names_map_back_to_targets() {
        let ch = Channels::new("rthub:");
        let room = Target::Room(Room::parse("a:b").expect("room"));
        assert_eq!(ch.name(&room), "rthub:room:a:b");
        assert_eq!(ch.target("rthub:room:a:b"), Some(room));
        assert_eq!(
            ch.target(&ch.name(&Target::Broadcast)),
            Some(Target::Broadcast)
        );
        assert_eq!(ch.target("other:room:a"), None);
        assert_eq!(ch.target("rthub:room:bad room"), None);
    }

    #[test]
    fn sharded_room_channels_share_the_slot_of_the_room_keys() {
        let ch = Channels::sharded("rthub:");
        let room = Room::parse("a:b").expect("room");
        let target = Target::Room(room.clone());
        assert_eq!(ch.name(&target), "rthub:room:{a:b}");
        assert_eq!(ch.target("rthub:room:{a:b}"), Some(target.clone()));
        assert_eq!(ch.target("rthub:room:a:b"), None);
        let (list, meta) = crate::history::HistoryKeys::new("rthub:").of(&room);
        let slot = key_slot(&ch.name(&target));
        assert_eq!(key_slot(&list), slot, "the append script touches one slot");
        assert_eq!(key_slot(&meta), slot);
        assert_eq!(ch.name(&Target::Broadcast), "rthub:broadcast");
        assert_eq!(ch.publish_command(), "SPUBLISH");
        assert_eq!(Channels::new("rthub:").publish_command(), "PUBLISH");
    }
}
