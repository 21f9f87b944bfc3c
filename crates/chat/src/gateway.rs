//! The one way a surface opens an MCP client of a server's route on the gateway: the person's
//! bearer token, any extra headers (a bot's channel), the 2026-07-28 era (stateless: nothing to
//! keep between calls). The web chat, the bots, `switchboard connect` and the demo traffic all
//! open their clients here.

use std::collections::HashMap;

use reqwest::header::{HeaderName, HeaderValue};
use rmcp::{
    ClientHandler, RoleClient,
    model::ProtocolVersion,
    service::{ClientInitializeError, ClientLifecycleMode, ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

/// An MCP client of `server`'s route on the gateway at `gateway_url`, as the holder of `token`.
pub async fn connect<H: ClientHandler>(
    handler: H,
    gateway_url: &str,
    server: &str,
    token: &str,
    headers: HashMap<HeaderName, HeaderValue>,
) -> Result<RunningService<RoleClient, H>, ClientInitializeError> {
    let url = format!("{}/servers/{server}/mcp", gateway_url.trim_end_matches('/'));
    let config = StreamableHttpClientTransportConfig::with_uri(url)
        .auth_header(token)
        .custom_headers(headers);
    let transport = StreamableHttpClientTransport::from_config(config);
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    handler.serve_with_lifecycle(transport, lifecycle).await
}
