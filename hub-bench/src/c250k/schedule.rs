//! Who gets personal message `k`: a fixed walk over the users that visits each once per round and
//! spreads neighbours apart (over workers and hubs), so the coordinator needs to tell the workers
//! only how many it sent — each worker works out what each of its users should have received.

/// Users are numbered `0..users`; message `k` goes to `(k × stride) mod users`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Personal {
    users: u64,
    stride: u64,
}

impl Personal {
    pub fn new(users: u64) -> Self {
        let users = users.max(1);
        // Near the golden ratio of the population and coprime with it: a permutation per round
        // whose consecutive messages land far apart.
        let mut stride = ((users as f64) * 0.618_033_988_75) as u64;
        stride = stride.max(1);
        while gcd(stride, users) != 1 {
            stride += 1;
        }
        Personal { users, stride }
    }

    pub fn user_of(&self, k: u64) -> u64 {
        ((u128::from(k) * u128::from(self.stride)) % u128::from(self.users)) as u64
    }

    /// What each user of `first..first + count` should have received when messages `0..sent`
    /// were sent, less those in `failed` (refused by the API): how many, and the sum of their
    /// numbers (to recognise a refused one that arrived all the same).
    pub fn expected(&self, first: u64, count: u64, sent: u64, failed: &[u64]) -> Vec<Expected> {
        let mut out = vec![Expected::default(); count as usize];
        let range = first..first + count;
        for k in 0..sent {
            let u = self.user_of(k);
            if range.contains(&u) {
                let e = &mut out[(u - first) as usize];
                e.count += 1;
                e.numbers = e.numbers.wrapping_add(k);
            }
        }
        for &k in failed {
            let u = self.user_of(k);
            if k < sent && range.contains(&u) {
                let e = &mut out[(u - first) as usize];
                e.count -= 1;
                e.numbers = e.numbers.wrapping_sub(k);
                e.refused.push(k);
            }
        }
        out
    }
}

/// What one user should have received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub count: u32,
    /// Sum of the message numbers (wrapping).
    pub numbers: u64,
    /// Numbers of this user's messages the API refused.
    pub refused: Vec<u64>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_round_is_a_permutation() {
        for users in [1u64, 2, 7, 10, 1000, 20_000] {
            let p = Personal::new(users);
            let mut seen = vec![false; users as usize];
            for k in 0..users {
                let u = p.user_of(k) as usize;
                assert!(!seen[u], "{users} users: {u} twice in one round");
                seen[u] = true;
            }
            assert_eq!(p.user_of(users), p.user_of(0), "the next round starts over");
        }
    }

    #[test]
    fn expected_counts_match_a_walk() {
        let p = Personal::new(1000);
        let (sent, failed) = (2_345u64, vec![3u64, 1500, 9999]);
        let mut walked = vec![0u32; 1000];
        for k in 0..sent {
            if !failed.contains(&k) {
                walked[p.user_of(k) as usize] += 1;
            }
        }
        let mut joined = Vec::new();
        for (first, count) in [(0, 300), (300, 700)] {
            joined.extend(p.expected(first, count, sent, &failed));
        }
        assert_eq!(joined.iter().map(|e| e.count).collect::<Vec<_>>(), walked);
        assert_eq!(
            joined.iter().map(|e| u64::from(e.count)).sum::<u64>(),
            sent - 2
        );
        let numbers: u64 = joined.iter().map(|e| e.numbers).sum();
        assert_eq!(numbers, (0..sent).sum::<u64>() - 3 - 1500);
        let refused: Vec<u64> = joined.iter().flat_map(|e| e.refused.clone()).collect();
        assert_eq!(refused.len(), 2, "9999 was never sent");
    }

    #[test]
    fn neighbours_land_apart() {
        let p = Personal::new(250_000);
        let d = p.user_of(1).abs_diff(p.user_of(0));
        assert!(
            d > 50_000,
            "consecutive messages 0 and 1 went to users {d} apart"
        );
    }
}
