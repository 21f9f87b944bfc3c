//! Per-user limits on tool calls that hold across gateway replicas: each replica announces itself
//! to the registry every few seconds and learns how many replicas are alive, then allows each
//! user its share of the limit (a token bucket of `limit / replicas` calls a minute). Behind a
//! balancer that spreads requests evenly, the replicas together allow about `limit` a minute,
//! with no shared state on the call path.

use std::{
    collections::HashMap,
    sync::{
        Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use registry_api::GatewayHeartbeat;
use registry_client::RegistryClient;
use service_kit::Shutdown;

/// The most users whose buckets are kept; full buckets are forgotten first.
const MAX_USERS: usize = 100_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct RateLimits {
    /// Calls a minute per user across every replica (none: unlimited).
    per_minute: Option<u32>,
    replicas: AtomicU32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimits {
    pub(crate) fn new(per_minute: Option<u32>) -> RateLimits {
        RateLimits {
            per_minute: per_minute.filter(|n| *n > 0),
            replicas: AtomicU32::new(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn set_replicas(&self, live: u32) {
        self.replicas.store(live.max(1), Ordering::Relaxed);
    }

    /// This replica's share: calls a minute per user.
    fn share(&self) -> Option<f64> {
        let per_minute = f64::from(self.per_minute?);
        Some((per_minute / f64::from(self.replicas.load(Ordering::Relaxed))).max(1.0))
    }

    /// Takes one call from `user`'s bucket; `Err(seconds)` when it is empty, with when to retry.
    pub(crate) fn take(&self, user: &str) -> Result<(), u64> {
        let Some(capacity) = self.share() else {
            return Ok(());
        };
        let per_second = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_USERS && !buckets.contains_key(user) {
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < capacity
            });
        }
        let bucket = buckets.entry(user.to_owned()).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second)
            .min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / per_second).ceil().max(1.0) as u64)
        }
    }

    pub(crate) fn per_minute(&self) -> Option<u32> {
        self.per_minute
    }
}

/// Announces this replica to the registry every `every` and keeps `limits` told how many
/// replicas are alive.
pub(crate) fn spawn_heartbeat(
    limits: std::sync::Arc<crate::Gateway>,
    registry: RegistryClient,
    url: String,
    every: Duration,
    shutdown: Shutdown,
) {
    let beat = GatewayHeartbeat {
        id: uuid::Uuid::new_v4().to_string(),
        url,
    };
    tokio::spawn(async move {
        loop {
            match registry.gateway_heartbeat(&beat).await {
                Ok(replicas) => limits.rate_limits.set_replicas(replicas.live),
                Err(e) => tracing::debug!(error = %e, "could not announce this gateway replica"),
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_user_gets_the_replica_s_share_of_the_limit() {
        let limits = RateLimits::new(Some(60));
        limits.set_replicas(3);
        // 60 a minute over 3 replicas: 20 here, for each user.
        for _ in 0..20 {
            assert!(limits.take("ann").is_ok());
        }
        let retry = limits.take("ann").unwrap_err();
        assert!((1..=3).contains(&retry), "{retry}");
        assert!(limits.take("bob").is_ok());
        assert!(RateLimits::new(None).take("ann").is_ok());
    }
}
