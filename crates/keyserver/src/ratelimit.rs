//! Token buckets for bundle fetches, one per (requesting account, target user).
//!
//! Two limiters use them: one answers 429 when an account fetches a user's bundles too often;
//! a slower one decides whether a fetch may *consume* one-time prekeys. Past it, the bundle is
//! still served, with no one-time X25519 prekey and the last-resort KEM prekey (PQXDH works
//! without them), so one account can take at most a handful of a user's one-time keys per
//! hour however patiently it fetches.
//!
//! Keying on the requesting *account* (not device) means adding devices does not buy more
//! fetches; keying on the target user means one account cannot drain any user's one-time
//! prekeys faster than the sustained rate. Buckets live in memory: in a scale-out deployment
//! each process enforces its own limit, so the effective limit is per process (the load
//! balancer's affinity, or a shared store, would tighten it).

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Buckets kept before full (idle) ones are dropped.
const MAX_TRACKED_BUCKETS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A keyed token-bucket limiter.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<(String, String), Bucket>>,
}

impl RateLimiter {
    /// `burst` tokens, refilled at `per_minute` tokens per minute.
    pub(crate) fn per_minute(burst: u32, per_minute: u32) -> Self {
        Self::with_rate(burst, f64::from(per_minute.max(1)) / 60.0)
    }

    /// `burst` tokens, refilled at `per_hour` tokens per hour.
    pub(crate) fn per_hour(burst: u32, per_hour: u32) -> Self {
        Self::with_rate(burst, f64::from(per_hour.max(1)) / 3600.0)
    }

    fn with_rate(burst: u32, per_second: f64) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for (`requester`, `target`) at `now`, or says how long to wait.
    pub(crate) fn check(
        &self,
        requester: &str,
        target: &str,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_TRACKED_BUCKETS {
            let (burst, rate) = (self.burst, self.per_second);
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.updated).as_secs_f64() * rate < burst
            });
        }
        let bucket = buckets
            .entry((requester.to_owned(), target.to_owned()))
            .or_insert(Bucket {
                tokens: self.burst,
                updated: now,
            });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / self.per_second;
            Err(Duration::from_secs_f64(wait))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let limiter = RateLimiter::per_minute(3, 60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", "b", t0).is_ok());
        }
        let wait = limiter.check("a", "b", t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Other pairs are independent.
        assert!(limiter.check("a", "c", t0).is_ok());
        assert!(limiter.check("x", "b", t0).is_ok());
        // One token per second at 60/minute.
        assert!(
            limiter
                .check("a", "b", t0 + Duration::from_millis(1001))
                .is_ok()
        );
        assert!(
            limiter
                .check("a", "b", t0 + Duration::from_millis(1002))
                .is_err()
        );
        // Never more than the burst, however long idle.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(limiter.check("a", "b", later).is_ok());
        }
        assert!(limiter.check("a", "b", later).is_err());
    }
}
