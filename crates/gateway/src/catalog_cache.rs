//! The gateway's view of the catalog: a snapshot of the registry's servers, swapped atomically on
//! each refresh. The gateway never reads the registry's database; it learns only through the API.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use policy::Engine;
use registry_api::ServerView;
use registry_client::{ClientError, RegistryClient};
use service_kit::Shutdown;

/// Refreshes on a miss happen at most this often, so unknown names cannot hammer the registry.
const MISS_REFRESH_COOLDOWN: Duration = Duration::from_millis(250);

#[derive(Clone)]
pub struct CatalogCache {
    inner: Arc<Inner>,
}

struct Inner {
    registry: RegistryClient,
    servers: ArcSwap<HashMap<String, Arc<ServerView>>>,
    /// The policy engine over the same snapshot of servers and the platform policies.
    engine: ArcSwap<Engine>,
    /// The platform policies the engine was built with.
    platform: ArcSwap<String>,
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    loaded: std::sync::atomic::AtomicBool,
}

impl CatalogCache {
    pub fn new(registry: RegistryClient) -> CatalogCache {
        CatalogCache {
            inner: Arc::new(Inner {
                registry,
                servers: ArcSwap::from_pointee(HashMap::new()),
                engine: ArcSwap::from_pointee(Engine::default()),
                platform: ArcSwap::from_pointee(String::new()),
                last_refresh: tokio::sync::Mutex::new(None),
                loaded: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Re-reads the catalog. Refreshes are serialized, so an older read can never overwrite a
    /// newer one.
    pub async fn refresh(&self) -> Result<usize, ClientError> {
        let mut last = self.inner.last_refresh.lock().await;
        self.refresh_locked(&mut last).await
    }

    async fn refresh_locked(&self, last: &mut Option<Instant>) -> Result<usize, ClientError> {
        *last = Some(Instant::now());
        let servers = self.inner.registry.list_servers().await?;
        let platform = self.inner.registry.platform_policies().await?;
        let count = servers.len();
        let current = self.inner.servers.load();
        let unchanged = *self.inner.platform.load_full() == platform
            && current.len() == servers.len()
            && servers
                .iter()
                .all(|s| current.get(&s.name).is_some_and(|known| **known == *s));
        if unchanged && self.is_loaded() {
            // Nothing moved: keep the engine, and with it the callers' cached entities.
            return Ok(count);
        }
        let engine = match registry_api::build_engine(&platform, &servers) {
            Ok((engine, broken)) => {
                for (server, problems) in broken {
                    tracing::error!(%server, %problems, "a server's policies do not load; every call to it is denied");
                }
                engine
            }
            Err(problems) => {
                // Keep the last good policies rather than fail open or closed on a bad update.
                let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
                tracing::error!(problems = %problems.join("; "), "the platform policies are invalid; keeping the previous ones");
                return Err(ClientError::Transport(
                    "the platform policies are invalid".into(),
                ));
            }
        };
        let map = servers
            .into_iter()
            .map(|s| (s.name.clone(), Arc::new(s)))
            .collect();
        // Servers and policies are swapped one right after the other, each atomically.
        self.inner.engine.store(Arc::new(engine));
        self.inner.servers.store(Arc::new(map));
        self.inner.platform.store(Arc::new(platform));
        self.inner
            .loaded
            .store(true, std::sync::atomic::Ordering::Release);
        Ok(count)
    }

    /// The policy engine of the current snapshot.
    pub fn engine(&self) -> Arc<Engine> {
        self.inner.engine.load_full()
    }

    /// Whether the catalog has been read from the registry at least once.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The server named `name`; on a miss, re-reads the registry and looks again. Misses share
    /// one refresh at a time and refresh at most once per cooldown, so unknown names cannot
    /// hammer the registry, yet a just-registered server is found within one cooldown.
    pub async fn server(&self, name: &str) -> Option<Arc<ServerView>> {
        if let Some(s) = self.inner.servers.load().get(name) {
            return Some(s.clone());
        }
        let mut last = self.inner.last_refresh.lock().await;
        if let Some(s) = self.inner.servers.load().get(name) {
            return Some(s.clone());
        }
        if let Some(at) = *last
            && at.elapsed() < MISS_REFRESH_COOLDOWN
        {
            tokio::time::sleep(MISS_REFRESH_COOLDOWN - at.elapsed()).await;
        }
        if let Err(e) = self.refresh_locked(&mut last).await {
            tracing::warn!(error = %e, "failed to refresh the catalog");
        }
        drop(last);
        self.inner.servers.load().get(name).cloned()
    }

    pub fn spawn_refresh(&self, every: Duration, shutdown: Shutdown) {
        let cache = self.clone();
        service_kit::spawn_every(every, shutdown, move || {
            let cache = cache.clone();
            async move {
                if let Err(e) = cache.refresh().await {
                    tracing::warn!(error = %e, "failed to refresh the catalog");
                }
            }
        });
    }
}
