//! The registry service: the source of truth for which MCP servers exist, who owns them, who may
//! use them and what they expose, plus the audit of every call made through the gateway. It serves a
//! REST API (`/v1/...`) over a [`registry_store::Store`]; every request is authenticated.

mod http;
mod service;

use std::sync::Arc;

use identity::Verifier;
use registry_store::Store;
use service_kit::Shutdown;
use tokio::net::TcpListener;

pub use http::router;

/// Everything the registry needs at run time; built by the binary from flags and files.
pub struct RegistryState {
    pub store: Arc<dyn Store>,
    /// Verifies every caller's bearer token.
    pub verifier: Arc<Verifier>,
    /// Callers in any of these groups may register servers and write audit records.
    pub writer_groups: Vec<String>,
    /// Callers in any of these groups may read the audit log of every server.
    pub auditor_groups: Vec<String>,
    /// The development issuer's JWKS, served at `/dev-issuer/jwks.json` under `switchboard up`.
    pub dev_issuer_jwks: Option<serde_json::Value>,
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
