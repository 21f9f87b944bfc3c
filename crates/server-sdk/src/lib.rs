//! The Switchboard server SDK. A team writes its MCP server as ordinary rmcp tools plus a
//! `switchboard.toml` manifest; the SDK adds, with no further code:
//!
//! - serving over streamable HTTP in both protocol eras (2026-07-28 and 2025-11-25) and over stdio;
//! - the caller's verified identity in every tool call ([`Caller`]): behind the gateway, the
//!   `X-Forwarded-*` headers are trusted only when the gateway's signed assertion verifies and
//!   matches them;
//! - the per-tool named policies of the manifest, enforced before the tool runs, plus an
//!   [`Governance::authorize`] guard for checks inside a tool;
//! - one structured log record and metrics per invocation, `/metrics`, `/healthz` and `/readyz`;
//! - confirming a dangerous action with the user from inside a tool, in either era ([`confirm`]);
//! - previews of calls that need approval, which the gateway attaches to their proposals
//!   ([`preview`]);
//! - the server's own Cedar policies, enforced with each call's arguments and, through
//!   [`Governance::authorize_call`], with what a tool works out about a call;
//! - idempotent calls: a call carrying an idempotency key (an approved call the gateway runs) runs
//!   at most once per key ([`Idempotency`]).
//!
//! The shape of a server:
//!
//! ```ignore
//! #[derive(Clone)]
//! struct Weather { tool_router: ToolRouter<Self> }
//! #[tool_router]
//! impl Weather { #[tool(description = "...")] async fn forecast(&self, ...) -> ... { ... } }
//! #[tool_handler(router = self.tool_router)]   // the governed router, not `Self::tool_router()`
//! impl ServerHandler for Weather { fn get_info(&self) -> ServerConfig { server_sdk::server_info(&MANIFEST) } }
//! // once, at start-up:
//! let governance = Governance::new(manifest)?;
//! let router = governance.govern(Weather::tool_router())?;   // policies + telemetry on every tool
//! ```

pub mod answer;
mod caller;
mod confirm;
mod governance;
mod http;
mod idempotency;
pub mod preview;
mod telemetry;

pub use caller::{Caller, caller_of};
pub use confirm::{CONFIRM_KEY, CONFIRMATION_REQUIRED, Confirmation, can_ask, confirm};
pub use governance::{DENIED_CODE, Governance};
pub use http::{HttpOptions, IdentityMode, ReadyCheck, http_router};
pub use idempotency::{IDEMPOTENCY_KEY, Idempotency};
pub use telemetry::Telemetry;

use rmcp::model::{Implementation, ServerCapabilities, ServerConfig};

/// The `get_info` answer for a tools server described by `manifest`.
pub fn server_info(manifest: &catalog::Manifest) -> ServerConfig {
    let mut implementation = Implementation::new(
        manifest.server.name.clone(),
        manifest.server.version.clone(),
    );
    if let Some(title) = &manifest.server.title {
        implementation = implementation.with_title(title.clone());
    }
    ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
        .with_server_info(implementation)
        .with_instructions(manifest.server.description.clone())
}

/// Serves `handler` over stdio until the client disconnects. The caller is the local identity
/// (`SWITCHBOARD_USER` / `SWITCHBOARD_GROUPS`, else the OS user), as set in the governance.
pub async fn serve_stdio<S: rmcp::ServerHandler>(handler: S) -> anyhow::Result<()> {
    use rmcp::ServiceExt;
    let running = handler.serve(rmcp::transport::stdio()).await?;
    running.waiting().await?;
    Ok(())
}
