//! MCP sessions the gateway opens to a server on its own behalf (live probes) or on a caller's
//! (running an approved proposal): an rmcp client that presents the gateway's signed assertion for
//! the identity it acts as, discovers or initializes, and never follows redirects.

use std::{collections::HashMap, time::Duration};

use identity::{ASSERTION_HEADER, Claims, FORWARDED_GROUPS_HEADER, FORWARDED_USER_HEADER};
use rmcp::{
    RoleClient,
    model::ProtocolVersion,
    service::{ClientLifecycleMode, ClientServiceExt, RunningService},
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};

use crate::{Gateway, catalog_cache::Server};

/// Who the gateway acts as towards the server.
pub(crate) struct ActingAs<'a> {
    pub(crate) user: &'a str,
    pub(crate) groups: &'a [String],
    pub(crate) surface: &'a str,
    /// The bot channel the call was asked in, carried in the assertion.
    pub(crate) channel: Option<&'a str>,
    /// The approved proposal the call runs, carried in the signed assertion.
    pub(crate) confirmation: Option<&'a str>,
}

/// A client session to `server` as `who`.
pub(crate) async fn connect(
    gateway: &Gateway,
    server: &Server,
    who: &ActingAs<'_>,
) -> Result<RunningService<RoleClient, ()>, String> {
    let mut claims = Claims::new(
        &gateway.issuer,
        who.user,
        &server.name,
        who.groups.to_vec(),
        60,
    );
    claims.surface = Some(who.surface.to_owned());
    claims.confirmation = who.confirmation.map(str::to_owned);
    claims.channel = who.channel.map(str::to_owned);
    let assertion = gateway
        .assertion_key
        .sign(&claims)
        .map_err(|e| format!("could not sign the identity assertion: {e}"))?;
    let header = |name: &str, value: &str| -> Result<_, String> {
        Ok((
            name.parse::<http::HeaderName>()
                .map_err(|e| e.to_string())?,
            value
                .parse::<http::HeaderValue>()
                .map_err(|e| format!("{name}: {e}"))?,
        ))
    };
    let headers: HashMap<_, _> = [
        header(FORWARDED_USER_HEADER, who.user)?,
        header(FORWARDED_GROUPS_HEADER, &who.groups.join(","))?,
        header(ASSERTION_HEADER, &assertion)?,
    ]
    .into_iter()
    .collect();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?;
    let config = StreamableHttpClientTransportConfig::with_uri(server.endpoint.clone())
        .custom_headers(headers);
    let transport = StreamableHttpClientTransport::with_client(http, config);
    let lifecycle = ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: None,
    };
    ().serve_with_lifecycle(transport, lifecycle)
        .await
        .map_err(|e| format!("connect: {e}"))
}
