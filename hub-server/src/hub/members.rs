//! A room's local members. One member is kept inline, without a map: every connection has its
//! personal room, nearly always with that one connection in it, and a map of one was a
//! ~250-byte allocation per connection (issue 25).

use std::collections::HashMap;

use super::state::{ClientId, Seat};

#[derive(Debug, Default)]
pub(super) enum Members {
    #[default]
    Empty,
    One(ClientId, Seat),
    Many(HashMap<ClientId, Seat>),
}

impl Members {
    /// Seats `client_id`, in place of its seat if it had one (as a map's insert).
    pub fn insert(&mut self, client_id: ClientId, seat: Seat) {
        match self {
            Members::Many(map) => {
                map.insert(client_id, seat);
            }
            Members::One(id, _) if *id != client_id => {
                let Members::One(id, first) = std::mem::take(self) else {
                    unreachable!("matched One above");
                };
                let mut map = HashMap::with_capacity(2);
                map.insert(id, first);
                map.insert(client_id, seat);
                *self = Members::Many(map);
            }
            Members::Empty | Members::One(..) => *self = Members::One(client_id, seat),
        }
    }

    pub fn remove(&mut self, client_id: &ClientId) {
        match self {
            Members::One(id, _) if id == client_id => *self = Members::Empty,
            Members::Many(map) => {
                map.remove(client_id);
            }
            _ => {}
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn len(&self) -> usize {
        match self {
            Members::Empty => 0,
            Members::One(..) => 1,
            Members::Many(map) => map.len(),
        }
    }

    pub fn get(&self, client_id: &ClientId) -> Option<&Seat> {
        match self {
            Members::One(id, seat) if id == client_id => Some(seat),
            Members::Many(map) => map.get(client_id),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, client_id: &ClientId) -> Option<&mut Seat> {
        match self {
            Members::One(id, seat) if id == client_id => Some(seat),
            Members::Many(map) => map.get_mut(client_id),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ClientId, &Seat)> {
        let (one, many) = match self {
            Members::Empty => (None, None),
            Members::One(id, seat) => (Some((id, seat)), None),
            Members::Many(map) => (None, Some(map.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::Recipient;

    fn seat(seated: u64) -> Seat {
        Seat::new(Recipient::new(4, 1 << 16).0, seated)
    }

    fn seated(members: &Members) -> Vec<(String, u64)> {
        let mut all: Vec<_> = members
            .iter()
            .map(|(id, seat)| (id.to_string(), seat.seated))
            .collect();
        all.sort();
        all
    }

    #[test]
    fn one_two_and_back_to_none_as_a_map_would() {
        let (a, b): (ClientId, ClientId) = ("a".into(), "b".into());
        let mut members = Members::default();
        assert!(members.is_empty());
        members.insert(a.clone(), seat(1));
        assert!(matches!(members, Members::One(..)), "one member is inline");
        members.insert(a.clone(), seat(2));
        assert_eq!(seated(&members), [("a".into(), 2)], "a seat taken again replaces");
        members.insert(b.clone(), seat(3));
        assert_eq!(members.len(), 2);
        assert_eq!(seated(&members), [("a".into(), 2), ("b".into(), 3)]);
        assert_eq!(members.get(&b).map(|s| s.seated), Some(3));
        members.get_mut(&a).expect("a").seated = 4;
        members.remove(&a);
        assert_eq!(seated(&members), [("b".into(), 3)]);
        assert!(members.get(&a).is_none());
        members.remove(&b);
        assert!(members.is_empty());
        members.insert(a.clone(), seat(5));
        members.remove(&b);
        assert_eq!(seated(&members), [("a".into(), 5)], "removing a stranger changes nothing");
        members.remove(&a);
        assert!(members.is_empty() && members.iter().next().is_none());
    }
}
