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

    /// Messages each user of `first..first + count` should have received when messages `0..sent`
    /// were sent, less those in `failed` (refused by the API: not published).
    pub fn expected(&self, first: u64, count: u64, sent: u64, failed: &[u64]) -> Vec<u32> {
        let mut out = vec![0u32; count as usize];
        let rounds = sent / self.users;
        let rest = sent % self.users;
        out.iter_mut().for_each(|n| *n = rounds as u32);
        for k in (sent - rest)..sent {
            let u = self.user_of(k);
            if (first..first + count).contains(&u) {
                out[(u - first) as usize] += 1;
            }
        }
        for &k in failed {
            let u = self.user_of(k);
            if k < sent && (first..first + count).contains(&u) {
                out[(u - first) as usize] -= 1;
            }
        }
        out
    }
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
        assert_eq!(joined, walked);
        assert_eq!(joined.iter().map(|&n| u64::from(n)).sum::<u64>(), sent - 2);
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
