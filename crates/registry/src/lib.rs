//! The registry service: the source of truth for which MCP servers exist, who owns them, who may
//! use them and what they expose, plus the audit of every call made through the gateway. It serves a
//! REST API (`/v1/...`) over a [`registry_store::Store`]; every request is authenticated.

mod http;
pub mod insights;
mod metrics;
mod service;
mod ui;

pub use ui::{OidcLogin, UiConfig};

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use arc_swap::ArcSwap;
use identity::Verifier;
use policy::Engine;
use registry_store::Store;
use service_kit::Shutdown;
use tokio::net::TcpListener;

pub use http::{openapi, router};

/// How a registry is configured; built by the binary from flags and files.
pub struct RegistryConfig {
    pub store: Arc<dyn Store>,
    /// Verifies every caller's bearer token.
    pub verifier: Arc<Verifier>,
    /// Callers in any of these groups may register servers and write audit records.
    pub writer_groups: Vec<String>,
    /// Callers in any of these groups may read the audit log of every server.
    pub auditor_groups: Vec<String>,
    /// The development issuer's JWKS, served at `/dev-issuer/jwks.json` under `switchboard up`.
    pub dev_issuer_jwks: Option<serde_json::Value>,
    /// Cedar policies that apply to every server (beyond the built-in ones).
    pub platform_policies: String,
    pub governance: Governance,
    pub publication: Publication,
    /// The web UI's sign-in.
    pub ui: UiConfig,
    /// How long audit records are kept (older ones are deleted hourly); `None`: for ever.
    pub audit_retention: Option<Duration>,
}

/// How the registry publishes its production-approved catalog in the official MCP Registry API
/// (`/v0.1/servers`), for IDE galleries and registry aggregators.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The reverse-DNS namespace of published names: `<namespace>/<server>`.
    pub namespace: String,
    /// The gateway's public base URL: each entry's remote is `<gateway_url>/servers/<name>/mcp`.
    /// Without it entries carry no remote.
    pub gateway_url: Option<String>,
    /// Serve `/v0.1` without a token (then every approved server is listed; with a token, only
    /// those the caller may use).
    pub anonymous: bool,
}

impl Default for Publication {
    fn default() -> Publication {
        Publication {
            namespace: "local.switchboard".to_owned(),
            gateway_url: None,
            anonymous: false,
        }
    }
}

/// Who governs the catalog: who manages teams, who reviews what, and which surfaces are for
/// development (where owners reach servers and tools not yet approved for production).
#[derive(Debug, Clone)]
pub struct Governance {
    /// Callers in any of these groups may create and change teams.
    pub admin_groups: Vec<String>,
    /// Per review kind, the groups whose members may decide it.
    pub reviewer_groups: BTreeMap<registry_api::ReviewKind, Vec<String>>,
    pub dev_surfaces: Vec<String>,
    /// How long a gateway's claim on an approved proposal lasts without a result before another
    /// may take it over (the first died while running it).
    pub claim_lease: Duration,
}

impl Governance {
    /// Teams managed by `admin_groups`; reviews by `security-reviewers`, `privacy-reviewers`
    /// and `genai-reviewers`; the `dev` surface for development.
    pub fn new(admin_groups: Vec<String>) -> Governance {
        use registry_api::ReviewKind;
        Governance {
            admin_groups,
            reviewer_groups: BTreeMap::from([
                (ReviewKind::Security, vec!["security-reviewers".to_owned()]),
                (
                    ReviewKind::LegalPrivacy,
                    vec!["privacy-reviewers".to_owned()],
                ),
                (ReviewKind::Genai, vec!["genai-reviewers".to_owned()]),
            ]),
            dev_surfaces: vec!["dev".to_owned()],
            claim_lease: Duration::from_secs(120),
        }
    }

    /// The groups that may decide reviews of `kind`.
    pub fn reviewers(&self, kind: registry_api::ReviewKind) -> &[String] {
        self.reviewer_groups.get(&kind).map_or(&[], Vec::as_slice)
    }
}

/// Everything the registry needs at run time.
pub struct RegistryState {
    pub store: Arc<dyn Store>,
    pub verifier: Arc<Verifier>,
    pub writer_groups: Vec<String>,
    pub auditor_groups: Vec<String>,
    pub dev_issuer_jwks: Option<serde_json::Value>,
    /// The platform policies as configured (the built-in ones come first when compiled), with
    /// the development surfaces.
    pub platform: registry_api::PlatformPolicies,
    pub governance: Governance,
    pub publication: Publication,
    pub audit_retention: Option<Duration>,
    pub(crate) metrics: metrics::Metrics,
    /// A short digest of the platform policies (fixed for the process), part of the catalog
    /// version the gateways poll.
    platform_digest: String,
    pub(crate) ui: ui::Ui,
    /// Every registered server and the policy engine over them, rebuilt on each registration
    /// here and whenever the store's catalog changes (another replica registered a server).
    snapshot: ArcSwap<Snapshot>,
    /// One reload at a time, so an older catalog never replaces a newer one.
    reloading: tokio::sync::Mutex<()>,
}

/// The catalog as of one reload: what discovery and listings read without touching the store.
#[derive(Default)]
pub struct Snapshot {
    pub servers: Vec<registry_api::ServerView>,
    pub engine: Arc<Engine>,
    /// The store's `catalog_version` this snapshot was read at.
    version: String,
    /// Discovery answers already computed against this snapshot, by caller.
    discoveries: std::sync::Mutex<DiscoveryCache>,
}

/// Serialized discovery answers for one snapshot, keyed by `(user, groups, surface, channel)`: the answer
/// is a pure function of the snapshot and the caller, and AI clients ask it often. Bounded by
/// size; a full cache starts over.
#[derive(Default)]
struct DiscoveryCache {
    answers: std::collections::HashMap<DiscoveryKey, DiscoveryAnswer>,
    bytes: usize,
}

/// A serialized discovery answer and its entity tag (a digest of the bytes), so a client that
/// asks again with `If-None-Match` is answered `304 Not Modified` instead of the whole answer.
#[derive(Clone)]
pub struct DiscoveryAnswer {
    pub body: axum::body::Bytes,
    /// A strong entity tag, quotes included.
    pub etag: String,
}

/// Who asked discovery: user, groups, surface and bot channel.
type DiscoveryKey = (String, Vec<String>, String, Option<String>);

/// The most memory the discovery answers of one snapshot may hold.
const DISCOVERY_CACHE_BYTES: usize = 64 << 20;

impl Snapshot {
    /// The serialized discovery answer for the caller, computed by `answer` once per snapshot.
    pub fn discovery(
        &self,
        user: &str,
        groups: &[String],
        surface: &str,
        channel: Option<&str>,
        answer: impl FnOnce() -> serde_json::Result<Vec<u8>>,
    ) -> serde_json::Result<DiscoveryAnswer> {
        let key = (
            user.to_owned(),
            groups.to_vec(),
            surface.to_owned(),
            channel.map(str::to_owned),
        );
        let cache = |c: &mut DiscoveryCache| c.answers.get(&key).cloned();
        let lock = || {
            self.discoveries
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if let Some(hit) = cache(&mut lock()) {
            return Ok(hit);
        }
        let body = axum::body::Bytes::from(answer()?);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &body);
        let etag = format!(
            "\"{}\"",
            digest.as_ref()[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let computed = DiscoveryAnswer { body, etag };
        let mut cached = lock();
        if cached.bytes + computed.body.len() > DISCOVERY_CACHE_BYTES {
            *cached = DiscoveryCache::default();
        }
        if computed.body.len() <= DISCOVERY_CACHE_BYTES {
            cached.bytes += computed.body.len();
            cached.answers.insert(key, computed.clone());
        }
        Ok(computed)
    }
}

/// The most tools one server may have on record (registered or observed), so a server that
/// lists endless new names cannot grow the catalog without bound.
pub const MAX_TOOLS_PER_SERVER: usize = 1000;

/// How often a registry checks whether another replica changed the catalog.
pub const CATALOG_CHECK_INTERVAL: Duration = Duration::from_secs(2);

/// How often audit records past their retention are deleted.
const RETENTION_CHECK_INTERVAL: Duration = Duration::from_secs(3600);

impl RegistryState {
    /// Validates the platform policies and loads every stored server's policies.
    pub async fn new(config: RegistryConfig) -> anyhow::Result<Arc<RegistryState>> {
        let platform = registry_api::PlatformPolicies {
            policies: config.platform_policies,
            dev_surfaces: config.governance.dev_surfaces.clone(),
        };
        let platform_digest =
            catalog::json_digest(&serde_json::to_value(&platform).unwrap_or_default())[..16]
                .to_owned();
        let state = RegistryState {
            store: config.store,
            verifier: config.verifier,
            writer_groups: config.writer_groups,
            auditor_groups: config.auditor_groups,
            dev_issuer_jwks: config.dev_issuer_jwks,
            platform,
            platform_digest,
            governance: config.governance,
            publication: config.publication,
            audit_retention: config.audit_retention,
            metrics: metrics::Metrics::default(),
            ui: ui::Ui::new(config.ui)?,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            reloading: tokio::sync::Mutex::new(()),
        };
        state.reload().await?;
        Ok(Arc::new(state))
    }

    /// The policy engine as of the last (re)load.
    pub fn engine(&self) -> Arc<Engine> {
        self.snapshot.load().engine.clone()
    }

    /// The catalog and its engine as of the last (re)load.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Re-reads every stored server and rebuilds the engine from the platform policies and their
    /// policies. A server whose stored policies no longer compile is left out (every decision
    /// about it is a denial).
    pub async fn reload(&self) -> anyhow::Result<()> {
        let _one_at_a_time = self.reloading.lock().await;
        // The version is read first: a change racing with the listing is seen again next time.
        let version = self.store.catalog_version().await?;
        let servers = self.store.list_servers().await?;
        let (engine, broken) =
            registry_api::build_engine(&self.platform, &servers).map_err(|problems| {
                anyhow::anyhow!(
                    "the platform policies are invalid: {}",
                    service::describe(&problems)
                )
            })?;
        for (server, problems) in broken {
            tracing::error!(%server, %problems, "a stored server's policies do not load");
        }
        self.snapshot.store(Arc::new(Snapshot {
            servers,
            engine: Arc::new(engine),
            version,
            discoveries: Default::default(),
        }));
        Ok(())
    }

    /// A fingerprint of everything the gateway decides with: the catalog as of the snapshot and
    /// the platform policies. It changes whenever either does.
    pub fn catalog_version(&self) -> String {
        format!("{}:{}", self.snapshot.load().version, self.platform_digest)
    }

    /// Reloads when the store's catalog differs from the snapshot's.
    pub async fn reload_if_changed(&self) -> anyhow::Result<bool> {
        let version = self.store.catalog_version().await?;
        if version == self.snapshot.load().version {
            return Ok(false);
        }
        self.reload().await?;
        Ok(true)
    }

    /// Checks for catalog changes made elsewhere every `every`, until `shutdown`.
    pub fn spawn_refresh(self: &Arc<Self>, every: Duration, shutdown: Shutdown) {
        let state = self.clone();
        service_kit::spawn_every(every, shutdown, move || {
            let state = state.clone();
            async move {
                if let Err(e) = state.reload_if_changed().await {
                    tracing::warn!(error = %e, "failed to check the catalog for changes");
                }
            }
        });
    }
}

/// Serves the registry on `listener` until `shutdown`.
pub async fn run(
    state: Arc<RegistryState>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    state.spawn_refresh(CATALOG_CHECK_INTERVAL, shutdown.clone());
    if let Some(keep) = state.audit_retention {
        let store = state.store.clone();
        service_kit::spawn_every(RETENTION_CHECK_INTERVAL, shutdown.clone(), move || {
            let store = store.clone();
            async move {
                let before = http::api::servers::now_ms()
                    - i64::try_from(keep.as_millis()).unwrap_or(i64::MAX / 2);
                match store.purge_audit(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "deleted audit records past retention"),
                    Err(e) => tracing::warn!(error = %e, "could not apply the audit retention"),
                }
            }
        });
    }
    tracing::info!(addr = %listener.local_addr()?, "registry listening");
    service_kit::serve(listener, router(state), shutdown).await
}
