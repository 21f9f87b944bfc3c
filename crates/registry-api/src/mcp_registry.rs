//! The official MCP Registry API's shapes (`GET /v0.1/servers`, `server.json`), in which the
//! registry publishes its production-approved catalog to IDE galleries and registry aggregators.
//! Field names follow that API (camelCase, `_meta` namespaces), not this crate's conventions.

use serde::{Deserialize, Serialize};

/// The `_meta` key of the registry-managed metadata of an entry.
pub const OFFICIAL_META: &str = "io.modelcontextprotocol.registry/official";
/// The `_meta` key of Switchboard's governance facts about an entry.
pub const GOVERNANCE_META: &str = "dev.switchboard/governance";

/// `server.json`: a static description of one MCP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServerDetail {
    #[serde(rename = "$schema")]
    pub schema: String,
    /// Reverse-DNS name: `<namespace>/<server>`.
    pub name: String,
    /// At most 100 characters.
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website_url: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remotes: Vec<Remote>,
}

/// A remote transport: where clients connect (the gateway's route for the server).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Remote {
    /// `streamable-http`.
    #[serde(rename = "type")]
    pub transport: String,
    pub url: String,
}

/// One entry of a listing: the server and the registry's metadata about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerResponse {
    pub server: ServerDetail,
    #[serde(rename = "_meta")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerListV0 {
    pub servers: Vec<ServerResponse>,
    pub metadata: ListMetadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ListMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    pub count: usize,
}

/// `GET /v0.1/servers` parameters.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ListQuery {
    /// The `nextCursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Page size: 1 to 100, 30 by default.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Substring of the server name.
    #[serde(default)]
    pub search: Option<String>,
    /// `latest` or an exact version.
    #[serde(default)]
    pub version: Option<String>,
    /// RFC 3339: only entries updated since.
    #[serde(default)]
    pub updated_since: Option<String>,
    #[serde(default)]
    pub include_deleted: Option<bool>,
}
