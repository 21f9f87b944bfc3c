//! The Switchboard gateway: one MCP route per registered server (`/servers/{name}/mcp`). For every
//! request it authenticates the end user's bearer JWT, gates the server by business group, filters
//! `tools/list` to exactly the tools the caller may call and whose definitions match the
//! registry's pinned ones, refuses denied `tools/call`s explicitly,
//! forwards the rest to the server with its own signed identity assertion (never the user's
//! token), and audits every tool call with its real outcome.
//!
//! The gateway is era-transparent where client and server share an era: it parses only the
//! JSON-RPC envelope of each POST and the one response it must inspect, and streams everything
//! else (SSE included) through unchanged, so 2025-11-25 sessions and 2026-07-28 stateless
//! requests both pass. Where they do not share one, it bridges them (`bridge.rs`,
//! `legacy_server.rs`), elicitation included.

mod approvals;
mod audit;
mod bridge;
mod catalog_cache;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod inspect;
mod legacy_server;
mod listings;
mod metadata;
mod metrics;
mod mtls;
mod pins;
mod probe;
mod proxy;
mod ratelimit;
mod sessions;
mod sse;
mod upstream;

use std::{path::PathBuf, sync::Arc, time::Duration};

use axum::{Json, Router, extract::State, routing::get};
use identity::{SigningKey, Verifier};
use registry_client::RegistryClient;
use service_kit::Shutdown;
use tokio::net::TcpListener;

pub use audit::{AuditSink, AuditSync};
pub use catalog_cache::CatalogCache;
pub use mtls::{
    MtlsCertificates, MtlsFiles, MtlsSource, PeerIdentity, serve as serve_mtls, tls_config,
};
pub use probe::{PROBE_USER, ProbeConfig};
pub use proxy::DEMO_TIME_HEADER;

/// Everything the gateway needs at run time.
pub struct GatewayConfig {
    /// Reads the catalog and receives audit records.
    pub registry: RegistryClient,
    /// Verifies end users' bearer tokens (audience: the gateway).
    pub verifier: Arc<Verifier>,
    /// Signs the identity assertions sent to servers; its JWKS is served at `/.well-known/jwks.json`.
    pub assertion_key: SigningKey,
    /// The `iss` of assertions; servers trust this issuer.
    pub issuer: String,
    /// The gateway's external base URL: MCP routes are `<public_url>/servers/<name>/mcp`.
    pub public_url: String,
    /// Scopes every end-user token must carry (empty: none).
    pub required_scopes: Vec<String>,
    /// What workloads on the mTLS listener may do.
    pub workloads: WorkloadTrust,
    /// Browser origins allowed to call MCP routes (requests without `Origin` are always allowed).
    pub allowed_origins: Vec<String>,
    /// Host names (without port) the gateway answers to, against DNS rebinding; empty allows any.
    pub allowed_hosts: Vec<String>,
    /// How often the catalog is re-read from the registry.
    pub catalog_refresh: Duration,
    /// The audit journal: records wait here for the registry.
    pub audit_spool: PathBuf,
    /// How durable a call's audit record is before the call is answered.
    pub audit_sync: AuditSync,
    /// Serve only tools whose live definition matches the registry's record (on by default;
    /// off is for development against servers whose tools change faster than their records).
    pub pin_tools: bool,
    /// Live status probes of every server.
    pub probes: ProbeConfig,
    /// How long a call awaiting approval may wait for a decision before it expires.
    pub approval_ttl: Duration,
    /// How long the call itself waits for a decision before answering "pending" (zero: answer
    /// at once); agents that send a progress token hear progress while it waits.
    pub approval_wait: Duration,
    /// Record calls at the time a request's `X-Switchboard-Demo-Time` header gives (milliseconds
    /// since the epoch) instead of now. Only `switchboard up --demo-traffic` sets it, to lay a
    /// month of generated traffic out over the month; never set it in production.
    pub demo_clock: bool,
    /// Tool calls a minute each user may make, across every replica (none: unlimited).
    pub rate_limit_per_minute: Option<u32>,
    /// How often this replica announces itself to the registry (which tells it how many
    /// replicas share the rate limits).
    pub replica_heartbeat: Duration,
    /// How long a server may take to answer a request (event streams that are not answers to a
    /// request are not limited).
    pub upstream_timeout: Duration,
}

/// Trust in workloads (mTLS peers, by SPIFFE ID).
#[derive(Debug, Clone, Default)]
pub struct WorkloadTrust {
    /// Peers that may vouch for end users with `X-Forwarded-User`/`-Groups` (an Envoy or
    /// oauth2-proxy in front of the gateway). Nobody else may send those headers.
    pub trusted_proxies: Vec<String>,
    /// The groups of services calling as themselves.
    pub service_groups: std::collections::HashMap<String, Vec<String>>,
}

pub(crate) struct Gateway {
    pub(crate) catalog: CatalogCache,
    pub(crate) verifier: Arc<Verifier>,
    pub(crate) assertion_key: SigningKey,
    pub(crate) issuer: String,
    pub(crate) public_url: String,
    pub(crate) required_scopes: Vec<String>,
    pub(crate) workloads: WorkloadTrust,
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) allowed_hosts: Vec<String>,
    pub(crate) audit: AuditSink,
    /// Answers the bridge awaits from legacy clients.
    pub(crate) bridge_answers: bridge::Answers,
    /// Which servers speak only the legacy era.
    pub(crate) eras: legacy_server::Eras,
    /// Calls on legacy servers waiting for their 2026-07-28 clients' next round.
    pub(crate) legacy_calls: legacy_server::Continuations,
    pub(crate) pins: pins::Pins,
    /// For reporting changed tool definitions and recording proposals.
    pub(crate) registry: RegistryClient,
    pub(crate) approval_ttl: Duration,
    pub(crate) approval_wait: Duration,
    pub(crate) demo_clock: bool,
    pub(crate) rate_limits: ratelimit::RateLimits,
    pub(crate) upstream_timeout: Duration,
    pub(crate) upstream: reqwest::Client,
    /// Signed assertions, sent again while they have at least half their life left: signing
    /// was the largest cost of forwarding a call, and a caller's calls to one server share one.
    pub(crate) assertions: identity::Remembered<axum::http::HeaderValue>,
    /// Sealed legacy session ids lately opened (`sessions::open`), so a session's requests
    /// check its signature once a minute rather than on each request.
    pub(crate) opened_sessions: identity::Remembered<String>,
    /// Servers' listings as last checked, and who sees what of them.
    pub(crate) listings: listings::Listings,
}

/// Assertions and opened sessions remembered at most, each.
const REMEMBERED_MAX: usize = 50_000;

/// Builds the gateway's router and starts its background tasks (catalog refresh, audit journal
/// delivery), which stop with `shutdown`. Once serving ends, [`AuditSink::drain`] delivers what
/// the last calls journaled.
pub async fn build(
    config: GatewayConfig,
    shutdown: Shutdown,
) -> anyhow::Result<(Router, AuditSink)> {
    let catalog = CatalogCache::new(config.registry.clone());
    if let Err(e) = catalog.refresh().await {
        // Not fatal: the registry may start after the gateway. Requests retry the refresh.
        tracing::warn!(error = %e, "could not read the catalog yet");
    }
    catalog.spawn_refresh(config.catalog_refresh, shutdown.clone());
    let registry = config.registry.clone();
    let audit = AuditSink::new(config.registry, config.audit_spool, config.audit_sync)?;
    audit.spawn_drain(shutdown.clone());
    let upstream = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()?;
    let gateway = Arc::new(Gateway {
        catalog,
        verifier: config.verifier,
        assertion_key: config.assertion_key,
        issuer: config.issuer,
        public_url: config.public_url.trim_end_matches('/').to_owned(),
        required_scopes: config.required_scopes,
        workloads: config.workloads,
        allowed_origins: config.allowed_origins,
        allowed_hosts: config
            .allowed_hosts
            .into_iter()
            .map(|h| h.to_ascii_lowercase())
            .collect(),
        audit,
        bridge_answers: bridge::Answers::default(),
        eras: legacy_server::Eras::default(),
        legacy_calls: legacy_server::Continuations::default(),
        pins: pins::Pins::new(config.pin_tools),
        registry,
        approval_ttl: config.approval_ttl,
        approval_wait: config.approval_wait,
        demo_clock: config.demo_clock,
        rate_limits: ratelimit::RateLimits::new(config.rate_limit_per_minute),
        upstream_timeout: config.upstream_timeout,
        upstream,
        assertions: identity::Remembered::new(REMEMBERED_MAX),
        opened_sessions: identity::Remembered::new(REMEMBERED_MAX),
        listings: listings::Listings::default(),
    });
    ratelimit::spawn_heartbeat(
        gateway.clone(),
        gateway.registry.clone(),
        gateway.public_url.clone(),
        config.replica_heartbeat,
        shutdown.clone(),
    );
    probe::spawn(gateway.clone(), config.probes, shutdown);
    let audit = gateway.audit.clone();
    Ok((router(gateway), audit))
}

fn router(gateway: Arc<Gateway>) -> Router {
    let catalog = gateway.catalog.clone();
    let jwks = identity::jwks_document(&[&gateway.assertion_key]);
    Router::new()
        .route("/servers/{name}/mcp", axum::routing::any(proxy::handle))
        .route(
            "/metrics",
            get(|State(gw): State<Arc<Gateway>>| async move { gw.audit.metrics_text().await }),
        )
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::gateway),
        )
        .route(
            "/.well-known/oauth-protected-resource/servers/{name}/mcp",
            get(metadata::server),
        )
        .with_state(gateway)
        .route(
            "/.well-known/jwks.json",
            get(move || async move { Json(jwks) }),
        )
        .merge(service_kit::readiness_routes(move || {
            let catalog = catalog.clone();
            async move {
                if catalog.is_loaded() {
                    Ok(())
                } else {
                    Err("the catalog has not been read from the registry yet".to_owned())
                }
            }
        }))
}

/// The host names a gateway listening on loopback answers to by default.
pub fn loopback_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
}

/// Serves the gateway on `listener` until `shutdown`.
pub async fn run(
    config: GatewayConfig,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let (router, audit) = build(config, shutdown.clone()).await?;
    tracing::info!(addr = %listener.local_addr()?, "gateway listening");
    let served = service_kit::serve(listener, router, shutdown).await;
    // The calls answered while shutting down are journaled; deliver them before exiting.
    audit.drain().await;
    served
}
