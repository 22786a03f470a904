//! A room's local members (client id → seat, `hub::state`): a map that keeps one entry inline.
//! Every connection has its personal room, nearly always with that one connection in it, and a
//! map of one was a ~250-byte allocation per connection (issue 25).

use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug, Default)]
pub(super) enum Members<K, V> {
    #[default]
    Empty,
    One(K, V),
    Many(HashMap<K, V>),
}

impl<K: Eq + Hash, V> Members<K, V> {
    /// Adds `key`, in place of its value if it had one (as a map's insert).
    pub fn insert(&mut self, key: K, value: V) {
        match self {
            Members::Many(map) => {
                map.insert(key, value);
            }
            Members::One(id, _) if *id != key => {
                let Members::One(id, first) = std::mem::take(self) else {
                    unreachable!("matched One above");
                };
                let mut map = HashMap::with_capacity(2);
                map.insert(id, first);
                map.insert(key, value);
                *self = Members::Many(map);
            }
            Members::Empty | Members::One(..) => *self = Members::One(key, value),
        }
    }

    pub fn remove(&mut self, key: &K) {
        match self {
            Members::One(id, _) if id == key => *self = Members::Empty,
            Members::Many(map) => {
                map.remove(key);
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

    pub fn get(&self, key: &K) -> Option<&V> {
        match self {
            Members::One(id, value) if id == key => Some(value),
            Members::Many(map) => map.get(key),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        match self {
            Members::One(id, value) if id == key => Some(value),
            Members::Many(map) => map.get_mut(key),
            _ => None,
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let (one, many) = match self {
            Members::Empty => (None, None),
            Members::One(id, value) => (Some((id, value)), None),
            Members::Many(map) => (None, Some(map.iter())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(members: &Members<&'static str, u64>) -> Vec<(&'static str, u64)> {
        let mut all: Vec<_> = members.iter().map(|(id, v)| (*id, *v)).collect();
        all.sort();
        all
    }

    #[test]
    fn one_two_and_back_to_none_as_a_map_would() {
        let mut members = Members::default();
        assert!(members.is_empty());
        members.insert("a", 1);
        assert!(matches!(members, Members::One(..)), "one member is inline");
        members.insert("a", 2);
        assert_eq!(all(&members), [("a", 2)], "a key inserted again replaces");
        members.insert("b", 3);
        assert_eq!(members.len(), 2);
        assert_eq!(all(&members), [("a", 2), ("b", 3)]);
        assert_eq!(members.get(&"b"), Some(&3));
        *members.get_mut(&"a").expect("a") = 4;
        assert_eq!(members.get(&"a"), Some(&4));
        members.remove(&"a");
        assert_eq!(all(&members), [("b", 3)]);
        assert!(members.get(&"a").is_none());
        members.remove(&"b");
        assert!(members.is_empty());
        members.insert("a", 5);
        members.remove(&"b");
        assert_eq!(
            all(&members),
            [("a", 5)],
            "removing a stranger changes nothing"
        );
        members.remove(&"a");
        assert!(members.is_empty() && members.iter().next().is_none());
    }
}
