//! Token buckets per sending device.
//!
//! A device's bucket survives its reconnections (it is keyed by address, not by socket), so
//! reconnecting does not refill it. A send costs one token per delivery (recipient); a send
//! larger than the whole bucket is allowed when the bucket is full and leaves it in debt,
//! so big group messages still go through, at the configured average rate.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::wire::DeviceAddress;

/// One bucket.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            last: now,
        }
    }

    /// Takes `cost` tokens or says how long until that is possible.
    fn try_take(&mut self, cost: f64, rate: f64, burst: f64, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.last = now;
        let needed = cost.min(burst);
        if self.tokens >= needed {
            self.tokens -= cost;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((needed - self.tokens) / rate))
        }
    }
}

/// Buckets for every device that sent recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    buckets: Mutex<HashMap<DeviceAddress, TokenBucket>>,
    rate: f64,
    burst: f64,
}

impl RateLimiter {
    pub(crate) fn new(rate_per_sec: u32, burst: u32) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            rate: f64::from(rate_per_sec.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }

    /// Charges `cost` deliveries to `device`; `Err(retry_after)` when its bucket is empty.
    pub(crate) fn check(
        &self,
        device: &DeviceAddress,
        cost: u64,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = map
            .entry(device.clone())
            .or_insert_with(|| TokenBucket::new(self.burst, now));
        bucket.try_take(cost as f64, self.rate, self.burst, now)
    }

    /// Forgets buckets that have refilled completely (they hold no information).
    pub(crate) fn prune(&self, now: Instant) {
        let full_after = self.burst / self.rate;
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < full_after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refuses_then_refills() {
        let limiter = RateLimiter::new(10, 20);
        let dev = DeviceAddress::new("a", 1).unwrap();
        let t0 = Instant::now();
        for _ in 0..20 {
            limiter.check(&dev, 1, t0).unwrap();
        }
        let wait = limiter.check(&dev, 1, t0).unwrap_err();
        assert!(
            wait > Duration::from_millis(50) && wait <= Duration::from_millis(101),
            "{wait:?}"
        );
        // After 0.5 s, 5 tokens are back.
        let t1 = t0 + Duration::from_millis(500);
        for _ in 0..5 {
            limiter.check(&dev, 1, t1).unwrap();
        }
        assert!(limiter.check(&dev, 1, t1).is_err());
        // Another device is unaffected.
        limiter
            .check(&DeviceAddress::new("b", 1).unwrap(), 20, t1)
            .unwrap();
    }

    #[test]
    fn oversized_send_goes_through_once_and_leaves_debt() {
        let limiter = RateLimiter::new(100, 100);
        let dev = DeviceAddress::new("a", 1).unwrap();
        let t0 = Instant::now();
        limiter.check(&dev, 500, t0).unwrap();
        // 400 tokens of debt: about 4 s before the next unit-cost send.
        let wait = limiter
            .check(&dev, 1, t0 + Duration::from_secs(1))
            .unwrap_err();
        assert!(wait > Duration::from_millis(2900), "{wait:?}");
    }

    #[test]
    fn prune_forgets_full_buckets_only() {
        let limiter = RateLimiter::new(10, 10);
        let t0 = Instant::now();
        limiter
            .check(&DeviceAddress::new("a", 1).unwrap(), 10, t0)
            .unwrap();
        limiter.prune(t0 + Duration::from_millis(100));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 1);
        limiter.prune(t0 + Duration::from_secs(2));
        assert_eq!(limiter.buckets.lock().unwrap().len(), 0);
    }
}
