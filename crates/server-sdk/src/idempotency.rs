//! Idempotent tool calls: a call whose request `_meta` carries an idempotency key (the gateway
//! sends the proposal id when it runs an approved call) runs at most once per key; a repeat, even
//! one that arrives while the first is still running, gets the first one's outcome. This is what
//! lets a gateway that crashed while running an approved call run it again safely.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use rmcp::{ErrorData, RoleServer, model::CallToolResponse, service::RequestContext};
use tokio::sync::OnceCell;

/// The request `_meta` key of an idempotency key.
pub const IDEMPOTENCY_KEY: &str = "dev.switchboard/idempotency-key";

/// How long an outcome is remembered.
const REMEMBER: Duration = Duration::from_secs(24 * 3600);
/// The most outcomes remembered; the oldest are forgotten first.
const CAPACITY: usize = 10_000;

type Outcome = Result<CallToolResponse, ErrorData>;

/// A keyed call: when it started, and its outcome once it has one.
type Entry = (Instant, Arc<OnceCell<Outcome>>);

/// Outcomes of keyed calls, shared by every session of one server process.
#[derive(Clone, Default)]
pub struct Idempotency {
    calls: Arc<Mutex<HashMap<String, Entry>>>,
}

impl Idempotency {
    /// The key of the call behind `ctx`, if its client sent one.
    pub fn key(ctx: &RequestContext<RoleServer>) -> Option<String> {
        ctx.meta
            .get(IDEMPOTENCY_KEY)
            .and_then(serde_json::Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 256)
            .map(str::to_owned)
    }

    /// Runs `call` once per `key` (always, without a key) and returns its outcome.
    pub async fn once<F>(&self, key: Option<String>, call: F) -> Outcome
    where
        F: Future<Output = Outcome>,
    {
        let Some(key) = key else {
            return call.await;
        };
        let cell = {
            let mut calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
            if calls.len() >= CAPACITY {
                calls.retain(|_, (at, _)| at.elapsed() < REMEMBER);
                if calls.len() >= CAPACITY
                    && let Some(oldest) = calls
                        .iter()
                        .min_by_key(|(_, (at, _))| *at)
                        .map(|(k, _)| k.clone())
                {
                    calls.remove(&oldest);
                }
            }
            calls
                .entry(key)
                .or_insert_with(|| (Instant::now(), Arc::new(OnceCell::new())))
                .1
                .clone()
        };
        cell.get_or_init(|| call).await.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use rmcp::model::{CallToolResult, ContentBlock};

    use super::*;

    #[tokio::test]
    async fn a_key_runs_once_even_when_repeated_concurrently() {
        let runs = Arc::new(AtomicUsize::new(0));
        let idempotency = Idempotency::default();
        let call = || {
            let runs = runs.clone();
            async move {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!("run {n}"))]).into())
            }
        };
        let key = || Some("prop-1".to_owned());
        let (a, b) = tokio::join!(
            idempotency.once(key(), call()),
            idempotency.once(key(), call())
        );
        let text = |o: Outcome| format!("{:?}", o.unwrap());
        assert_eq!(text(a), text(b));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        idempotency.once(None, call()).await.unwrap();
        idempotency.once(None, call()).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }
}
