//! The registry service: the source of truth for which MCP servers exist, who owns them, who may
//! use them and what they expose, plus the audit of every call made through the gateway. It serves a
//! REST API (`/v1/...`) over a [`registry_store::Store`]; every request is authenticated.

mod http;
mod service;

use std::sync::Arc;

use arc_swap::ArcSwap;
use identity::Verifier;
use policy::Engine;
use registry_store::Store;
use service_kit::Shutdown;
use tokio::net::TcpListener;

pub use http::router;

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
}

/// Everything the registry needs at run time.
pub struct RegistryState {
    pub store: Arc<dyn Store>,
    pub verifier: Arc<Verifier>,
    pub writer_groups: Vec<String>,
    pub auditor_groups: Vec<String>,
    pub dev_issuer_jwks: Option<serde_json::Value>,
    /// The platform policies as configured (the built-in ones come first when compiled).
    pub platform_policies: String,
    /// The policy engine over every registered server, rebuilt on each registration.
    engine: ArcSwap<Engine>,
}

impl RegistryState {
    /// Validates the platform policies and loads every stored server's policies.
    pub async fn new(config: RegistryConfig) -> anyhow::Result<Arc<RegistryState>> {
        let state = RegistryState {
            store: config.store,
            verifier: config.verifier,
            writer_groups: config.writer_groups,
            auditor_groups: config.auditor_groups,
            dev_issuer_jwks: config.dev_issuer_jwks,
            platform_policies: config.platform_policies,
            engine: ArcSwap::from_pointee(Engine::default()),
        };
        state.reload_policies().await?;
        Ok(Arc::new(state))
    }

    /// The policy engine as of the last (re)load.
    pub fn engine(&self) -> Arc<Engine> {
        self.engine.load_full()
    }

    /// Rebuilds the engine from the platform policies and every stored server. A server whose
    /// stored policies no longer compile is left out (every decision about it is a denial).
    pub async fn reload_policies(&self) -> anyhow::Result<()> {
        let servers = self.store.list_servers().await?;
        let (engine, broken) = registry_api::build_engine(&self.platform_policies, &servers)
            .map_err(|problems| {
                anyhow::anyhow!(
                    "the platform policies are invalid: {}",
                    service::describe(&problems)
                )
            })?;
        for (server, problems) in broken {
            tracing::error!(%server, %problems, "a stored server's policies do not load");
        }
        self.engine.store(Arc::new(engine));
        Ok(())
    }
}

/// Serves the registry on `listener` until `shutdown`.
pub async fn run(
    state: Arc<RegistryState>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "registry listening");
    service_kit::serve(listener, router(state), shutdown).await
}
