//! Wire types of the registry's REST API (`/v1/...`). This crate is a stability boundary: the
//! gateway, the CLI, SDK-built servers and AI clients all speak these shapes, so fields are only
//! ever added, never renamed or removed.

use catalog::Manifest;
use serde::{Deserialize, Serialize};

/// `POST /v1/servers`: register a server, or update it when the name is already known.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterServer {
    pub manifest: Manifest,
    /// Where the gateway reaches the server's MCP endpoint, e.g. `http://10.0.0.5:8080/mcp`.
    pub endpoint: String,
    /// `dev`, `staging` or `prod`.
    pub environment: String,
    /// The tools the server serves, as it reports them.
    pub tools: Vec<ToolDefinition>,
}

/// A tool definition as an MCP server reports it in `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "inputSchema")]
    pub input_schema: serde_json::Value,
    #[serde(
        rename = "outputSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub output_schema: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Value>,
}

/// A named policy as the registry resolved it from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyView {
    pub name: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolView {
    #[serde(flatten)]
    pub definition: ToolDefinition,
    pub minutes_saved: f64,
    pub sensitivity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
}

/// Everything the registry knows about one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub owner_team: String,
    pub support_channel: String,
    pub version: String,
    pub endpoint: String,
    pub environment: String,
    /// Empty means every authenticated caller may use the server.
    pub allowed_groups: Vec<String>,
    pub status: String,
    pub registered_at_ms: i64,
    pub updated_at_ms: i64,
    pub tools: Vec<ToolView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerList {
    pub servers: Vec<ServerView>,
}

/// `GET /v1/access?user=&groups=&server=[&tool=]`: may this caller use server X (or tool T)?
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessQuery {
    pub user: String,
    /// Comma-separated group names.
    #[serde(default)]
    pub groups: String,
    pub server: String,
    #[serde(default)]
    pub tool: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccessAnswer {
    pub allowed: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// `GET /v1/discovery`: the servers and tools the caller of the request may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Discovery {
    pub user: String,
    pub groups: Vec<String>,
    pub servers: Vec<DiscoveredServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoveredServer {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub owner_team: String,
    pub support_channel: String,
    pub environment: String,
    /// Path of the server's route on the gateway, e.g. `/servers/knowledge/mcp`.
    pub gateway_path: String,
    pub tools: Vec<ToolView>,
}

/// What became of one call through the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The tool ran and returned a result (which may still carry `isError`).
    Ok,
    /// The tool ran and reported an error result (`isError: true`).
    ToolError,
    /// The gateway refused the call.
    Denied,
    /// The server answered with a JSON-RPC error, or could not be reached.
    Error,
    /// The server asked the client for more input (MRTR `input_required`).
    InputRequired,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::InputRequired => "input_required",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Ok,
            Outcome::ToolError,
            Outcome::Denied,
            Outcome::Error,
            Outcome::InputRequired,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One audited call. Arguments are never stored, only their SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Unique id chosen by the writer, so a retried write is stored once.
    pub id: String,
    pub time_ms: i64,
    pub user: String,
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    pub server: String,
    /// The JSON-RPC method, e.g. `tools/call`.
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// Hex SHA-256 of the canonical JSON of the call's arguments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub argument_digest: Option<String>,
    pub outcome: Outcome,
    pub is_error: bool,
    /// A short reason for denials and errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub latency_ms: u64,
}

/// `GET /v1/audit?server=&user=&limit=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
}

/// The body of every error response: a stable code, a message for people, and the request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}
