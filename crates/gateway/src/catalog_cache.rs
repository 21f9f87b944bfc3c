//! The gateway's view of the catalog: a snapshot of the registry's servers, swapped atomically on
//! each refresh. The gateway never reads the registry's database; it learns only through the API.
//! The snapshot keeps each server [compacted](ServerView::compacted): what serving a call
//! reads, not the titles, descriptions and schemas people read in the registry; and each
//! server's tools indexed by name, since every call looks its tool up.

use std::{
    collections::HashMap,
    ops::Deref,
    sync::Arc,
    time::{Duration, Instant},
};

use arc_swap::ArcSwap;
use policy::Engine;
use registry_api::{PlatformPolicies, ServerView, ToolView};
use registry_client::{ClientError, RegistryClient};
use service_kit::Shutdown;

/// Refreshes on a miss happen at most this often, so unknown names cannot hammer the registry.
const MISS_REFRESH_COOLDOWN: Duration = Duration::from_millis(250);

/// A server of the gateway's snapshot: its record and its tools by name. It reads as its
/// record (`Deref`); [`Server::tool`] finds a tool without walking the list, which for a server
/// of a thousand tools was a thousand comparisons, several times a call.
#[derive(Debug)]
pub struct Server {
    record: ServerView,
    /// Positions in `record.tools`, ordered by tool name (a stable sort: among tools of one
    /// name, the first listed comes first, as a walk of the list would find it).
    by_name: Box<[usize]>,
    /// The server, or one of its tools, is not approved for production yet.
    awaits_approval: bool,
    /// `record.endpoint` parsed, as every forwarded request would parse it again; `None` when
    /// it does not parse (the request then fails with reqwest's own error).
    endpoint_url: Option<reqwest::Url>,
}

impl Server {
    pub fn new(record: ServerView) -> Server {
        let mut by_name: Vec<usize> = (0..record.tools.len()).collect();
        by_name.sort_by_key(|i| record.tools[*i].definition.name.as_str());
        let awaits_approval = !record.approved || record.tools.iter().any(|t| !t.approved);
        let endpoint_url = reqwest::Url::parse(&record.endpoint).ok();
        Server {
            record,
            by_name: by_name.into_boxed_slice(),
            awaits_approval,
            endpoint_url,
        }
    }

    /// The server's endpoint, parsed once per snapshot.
    pub fn endpoint_url(&self) -> Option<&reqwest::Url> {
        self.endpoint_url.as_ref()
    }

    /// The server's tool named `name`.
    pub fn tool(&self, name: &str) -> Option<&ToolView> {
        let tools = &self.record.tools;
        let at = self
            .by_name
            .partition_point(|i| tools[*i].definition.name.as_str() < name);
        let found = &tools[*self.by_name.get(at)?];
        (found.definition.name == name).then_some(found)
    }

    /// Whether the server, or one of its tools, is not approved for production yet.
    pub fn awaits_approval(&self) -> bool {
        self.awaits_approval
    }

    /// The server's record.
    pub fn record(&self) -> &ServerView {
        &self.record
    }
}

impl Deref for Server {
    type Target = ServerView;

    fn deref(&self) -> &ServerView {
        &self.record
    }
}

#[derive(Clone)]
pub struct CatalogCache {
    inner: Arc<Inner>,
}

struct Inner {
    registry: RegistryClient,
    servers: ArcSwap<HashMap<String, Arc<Server>>>,
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
                    .is_some_and(|known| *known.record() == s.clone().compacted())
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
            .map(|s| (s.name.clone(), Arc::new(Server::new(s.compacted()))))
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
    pub fn servers(&self) -> Vec<Arc<Server>> {
        self.inner.servers.load().values().cloned().collect()
    }

    /// Whether the catalog has been read from the registry at least once.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The server named `name`; on a miss, re-reads the registry and looks again. Misses share
    /// one refresh at a time and refresh at most once per cooldown, so unknown names cannot
    /// hammer the registry, yet a just-registered server is found within one cooldown.
    pub async fn server(&self, name: &str) -> Option<Arc<Server>> {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tool(name: &str, description: &str) -> serde_json::Value {
        json!({"name": name, "description": description, "inputSchema": {"type": "object"}})
    }

    #[test]
    fn a_tool_is_found_by_name_whatever_the_order_it_was_listed_in() {
        let names = ["query", "explain", "Zeta", "tables", "a", "queryx", "quer"];
        let listed: Vec<_> = names.iter().map(|n| tool(n, n)).collect();
        let server = crate::pins::tests::server(&listed);
        for name in names {
            let found = server.tool(name).expect(name);
            assert_eq!(found.definition.name, name);
        }
        for missing in ["", "b", "qu", "querz", "zeta", "~"] {
            assert!(server.tool(missing).is_none(), "{missing}");
        }
        assert!(crate::pins::tests::server(&[]).tool("query").is_none());
    }

    /// Where a record names a tool twice, the first listed is the one found, as a walk of the
    /// list would find it.
    #[test]
    fn of_two_tools_of_one_name_the_first_listed_is_found() {
        let server = crate::pins::tests::server(&[
            tool("b", "first b"),
            tool("a", "the a"),
            tool("b", "second b"),
            tool("b", "third b"),
        ]);
        let found = server.tool("b").unwrap();
        assert_eq!(found.definition.description.as_deref(), Some("first b"));
    }

    #[test]
    fn a_server_awaits_approval_while_it_or_one_of_its_tools_is_unapproved() {
        let mut record = crate::pins::tests::server(&[tool("a", "a"), tool("b", "b")])
            .record()
            .clone();
        for tool in &mut record.tools {
            tool.approved = true;
        }
        assert!(!Server::new(record.clone()).awaits_approval());
        record.tools[1].approved = false;
        assert!(Server::new(record.clone()).awaits_approval());
        record.tools[1].approved = true;
        record.approved = false;
        assert!(Server::new(record).awaits_approval());
    }
}
