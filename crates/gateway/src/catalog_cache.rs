//! The gateway's view of the catalog: a snapshot of the registry's servers, swapped atomically on
//! each refresh. The gateway never reads the registry's database; it learns only through the API.
//! The snapshot keeps each server [compacted](ServerView::compacted): what serving a call
//! reads, not the titles, descriptions and schemas people read in the registry.

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use policy::Engine;
use registry_api::{PlatformPolicies, ServerView};
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
    platform: ArcSwap<PlatformPolicies>,
    /// When the catalog was last read, and the registry's catalog version it was read at.
    last_refresh: tokio::sync::Mutex<(Option<Instant>, String)>,
    loaded: std::sync::atomic::AtomicBool,
}

impl CatalogCache {
    pub fn new(registry: RegistryClient) -> CatalogCache {
        CatalogCache {
            inner: Arc::new(Inner {
                registry,
                servers: ArcSwap::from_pointee(HashMap::new()),
                engine: ArcSwap::from_pointee(Engine::default()),
                platform: ArcSwap::from_pointee(PlatformPolicies::default()),
                last_refresh: tokio::sync::Mutex::new((None, String::new())),
                loaded: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// Re-reads the catalog if the registry's catalog version moved. Refreshes are serialized,
    /// so an older read can never overwrite a newer one. Returns whether anything changed.
    pub async fn refresh(&self) -> Result<bool, ClientError> {
        let mut last = self.inner.last_refresh.lock().await;
        self.refresh_locked(&mut last).await
    }

    async fn refresh_locked(
        &self,
        (last, known_version): &mut (Option<Instant>, String),
    ) -> Result<bool, ClientError> {
        *last = Some(Instant::now());
        // Polling the version is cheap; the catalog itself is read only when it moved.
        let version = self.inner.registry.catalog_version().await?;
        if self.is_loaded() && version == *known_version {
            return Ok(false);
        }
        let servers = self.inner.registry.list_servers().await?;
        let platform = self.inner.registry.platform_policies().await?;
        let current = self.inner.servers.load();
        // The snapshot keeps each server compacted; the engine is built from the full records.
        let unchanged = *self.inner.platform.load_full() == platform
            && current.len() == servers.len()
            && servers.iter().all(|s| {
                current
                    .get(&s.name)
                    .is_some_and(|known| **known == s.clone().compacted())
            });
        if unchanged && self.is_loaded() {
            // Nothing moved: keep the engine, and with it the callers' cached entities.
            *known_version = version;
            return Ok(false);
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
            .map(|s| (s.name.clone(), Arc::new(s.compacted())))
            .collect();
        // Servers and policies are swapped one right after the other, each atomically.
        self.inner.engine.store(Arc::new(engine));
        self.inner.servers.store(Arc::new(map));
        self.inner.platform.store(Arc::new(platform));
        self.inner
            .loaded
            .store(true, std::sync::atomic::Ordering::Release);
        *known_version = version;
        Ok(true)
    }

    /// The policy engine of the current snapshot.
    pub fn engine(&self) -> Arc<Engine> {
        self.inner.engine.load_full()
    }

    /// Every server in the current snapshot.
    pub fn servers(&self) -> Vec<Arc<ServerView>> {
        self.inner.servers.load().values().cloned().collect()
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
        {
            let _last = self.inner.last_refresh.lock().await;
            if let Some(s) = self.inner.servers.load().get(name) {
                return Some(s.clone());
            }
        }
        self.recheck().await;
        self.inner.servers.load().get(name).cloned()
    }

    /// Looks at the registry again, at most once per cooldown (callers share one check), for
    /// when a request is refused by what may be stale: an unknown server, or one not yet
    /// approved. Returns whether the catalog changed.
    pub async fn recheck(&self) -> bool {
        let mut last = self.inner.last_refresh.lock().await;
        if let Some(at) = last.0
            && at.elapsed() < MISS_REFRESH_COOLDOWN
        {
            tokio::time::sleep(MISS_REFRESH_COOLDOWN - at.elapsed()).await;
        }
        match self.refresh_locked(&mut last).await {
            Ok(changed) => changed,
            Err(e) => {
                tracing::warn!(error = %e, "failed to refresh the catalog");
                false
            }
        }
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
