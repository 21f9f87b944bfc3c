//! The MCP conformance fixture server, built with the Switchboard server SDK. It implements the
//! fixture contract of the official conformance suite (`@modelcontextprotocol/conformance`) so CI
//! can check the SDK, and the same server behind the gateway, against both protocol eras.

use catalog::Manifest;
use rmcp::handler::server::router::tool::ToolRouter;
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};

mod fixture;
mod interactive;
mod schemas;

pub use fixture::Conformance;

pub const NAME: &str = "conformance";
pub const MANIFEST: &str = include_str!("../switchboard.toml");

pub struct Fixture {
    governance: Governance,
    router: ToolRouter<Conformance>,
    codec: rmcp::model::RequestStateCodec,
}

impl Fixture {
    pub fn new() -> anyhow::Result<Fixture> {
        let manifest =
            Manifest::parse(MANIFEST).map_err(|p| anyhow::anyhow!("bundled manifest: {p:?}"))?;
        let governance =
            Governance::new(manifest, Caller::local()).map_err(|p| anyhow::anyhow!("{p:?}"))?;
        let router = governance
            .govern(Conformance::tools())
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        // A fresh HMAC key per process: request states do not outlive the server.
        let key: Vec<u8> = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()]
            .iter()
            .flat_map(|u| u.into_bytes())
            .collect();
        let codec = rmcp::model::RequestStateCodec::try_new(key)
            .map_err(|e| anyhow::anyhow!("request state key: {e}"))?;
        Ok(Fixture {
            governance,
            router,
            codec,
        })
    }

    pub fn handler(&self) -> Conformance {
        Conformance::new(self.router.clone(), self.codec.clone())
    }

    pub fn http_router(&self, identity: IdentityMode, allowed_hosts: Vec<String>) -> axum::Router {
        let (router, codec) = (self.router.clone(), self.codec.clone());
        server_sdk::http_router(
            move || Conformance::new(router.clone(), codec.clone()),
            self.governance.clone(),
            HttpOptions {
                identity,
                allowed_hosts,
                ready: None,
            },
        )
    }

    pub fn manifest(&self) -> &Manifest {
        self.governance.manifest()
    }

    /// The tools the fixture serves, as it lists them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.router.list_all()
    }
}
