//! Per-member flood control: a token bucket for each member of each chat, so that one member
//! flooding a group (or a private chat) is slowed down without touching anyone else. In
//! memory, per instance: it protects the process, it is not a quota.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::store::MemberKey;

/// What to do with an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// The first update over the limit: tell the member to slow down.
    Warn,
    /// Over the limit and already warned: drop silently.
    Drop,
}

pub struct Limiter {
    /// Updates a member may send in a burst.
    pub burst: f64,
    /// Updates per second a member may sustain.
    pub rate: f64,
    buckets: Mutex<HashMap<MemberKey, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
    warned: bool,
}

/// Buckets kept before idle ones are dropped.
const MAX_BUCKETS: usize = 50_000;

impl Limiter {
    pub fn new(burst: f64, rate: f64) -> Limiter {
        Limiter {
            burst,
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: MemberKey) -> Verdict {
        self.check_at(key, Instant::now())
    }

    pub fn check_at(&self, key: MemberKey, now: Instant) -> Verdict {
        let Ok(mut buckets) = self.buckets.lock() else {
            return Verdict::Allow;
        };
        if buckets.len() >= MAX_BUCKETS {
            let (burst, rate) = (self.burst, self.rate);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let b = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
            warned: false,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            b.warned = false;
            Verdict::Allow
        } else if b.warned {
            Verdict::Drop
        } else {
            b.warned = true;
            Verdict::Warn
        }
    }
}

impl Default for Limiter {
    /// 20 updates at once, then one every half second: far above a person answering a check.
    fn default() -> Self {
        Limiter::new(20.0, 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flooding_member_is_slowed_and_others_are_not() {
        let l = Limiter::new(3.0, 1.0);
        let t = Instant::now();
        let a = MemberKey { chat: -1, user: 1 };
        let b = MemberKey { chat: -1, user: 2 };
        let verdicts: Vec<Verdict> = (0..6).map(|_| l.check_at(a, t)).collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Allow,
                Verdict::Warn,
                Verdict::Drop,
                Verdict::Drop
            ]
        );
        assert_eq!(
            l.check_at(b, t),
            Verdict::Allow,
            "another member is untouched"
        );
        assert_eq!(
            l.check_at(a, t + Duration::from_millis(1500)),
            Verdict::Allow
        );
    }
}
