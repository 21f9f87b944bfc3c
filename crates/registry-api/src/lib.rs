//! Wire types of the registry's REST API (`/v1/...`). This crate is a stability boundary: the
//! gateway, the CLI, SDK-built servers and AI clients all speak these shapes, so fields are only
//! ever added, never renamed or removed.

mod approvals;
mod facts;
mod governance;
mod insights;
pub mod mcp_registry;

pub use approvals::{
    Approver, BatchOutcome, DecideProposals, NewProposal, Proposal, ProposalList, ProposalState,
    Refused,
};
use catalog::Manifest;
pub use facts::{Excluded, build_engine, policy_facts};
pub use governance::{
    ChangeList, ChangeRecord, DecideReview, Review, ReviewFinding, ReviewKind, ReviewList,
    ReviewScope, ReviewState, RoundPlan, Team, TeamList, access_digest, merge_observed, plan_round,
};
pub use insights::{
    CallFact, DayInsight, Feedback, FeedbackCounts, Figures, GroupInsight, Insights, NewFeedback,
    Percentiles, ProposalStats, Rating, ToolInsight,
};
use serde::{Deserialize, Serialize};

/// `POST /v1/servers`: register a server, or update it when the name is already known.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterServer {
    /// The server's `switchboard.toml`, as JSON.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub manifest: Manifest,
    /// Where the gateway reaches the server's MCP endpoint, e.g. `http://10.0.0.5:8080/mcp`.
    pub endpoint: String,
    /// `dev`, `staging` or `prod`.
    pub environment: String,
    /// The tools the server serves, as it reports them.
    pub tools: Vec<ToolDefinition>,
    /// The server's own Cedar policies (argument conditions, bot channels); validated on
    /// registration together with the policies compiled from the manifest.
    #[serde(default)]
    pub policies: String,
}

impl RegisterServer {
    /// The tools as the registry records them: each definition with the manifest's metadata and
    /// its named policy resolved to groups.
    pub fn tool_views(&self) -> Vec<ToolView> {
        let m = &self.manifest;
        self.tools
            .iter()
            .map(|definition| {
                let meta = m.tools.get(&definition.name);
                let policy = m.tool_policy(&definition.name).map(|(name, p)| PolicyView {
                    name: name.to_owned(),
                    groups: p.groups.clone(),
                });
                let sensitivity = meta.map_or("low", |t| t.sensitivity.as_str());
                let approval = approval_for(
                    meta.and_then(|t| t.approval.as_deref()),
                    definition,
                    sensitivity,
                );
                ToolView::new(
                    definition.clone(),
                    meta.map_or(0.0, |t| t.minutes_saved),
                    sensitivity.to_owned(),
                    policy,
                )
                .with_approval(approval)
                .with_preview(meta.is_some_and(|t| t.preview))
                .with_sensitive_arguments(
                    meta.map(|t| t.sensitive_arguments.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The server as it will be once registered (timestamps aside).
    pub fn preview(&self) -> ServerView {
        let s = &self.manifest.server;
        ServerView {
            name: s.name.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            owner_team: s.owner_team.clone(),
            support_channel: s.support_channel.clone(),
            version: s.version.clone(),
            docs_url: s.docs_url.clone(),
            data_classification: s.data_classification.as_str().to_owned(),
            sensitivity: s.sensitivity.as_str().to_owned(),
            endpoint: self.endpoint.clone(),
            environment: self.environment.clone(),
            allowed_groups: self.manifest.access.allowed_groups.clone(),
            status: "active".into(),
            registered_at_ms: 0,
            updated_at_ms: 0,
            tools: self.tool_views(),
            policies: self.policies.clone(),
            revision: 0,
            approved: false,
            owner_users: Vec::new(),
            owner_groups: Vec::new(),
        }
    }
}

/// Who must approve each call of a tool: the manifest's `approval` (`none` for nobody), else
/// `self` for a tool annotated `destructiveHint: true` (and not read-only), `owners` for a
/// high-sensitivity tool, else nobody.
pub fn approval_for(
    declared: Option<&str>,
    definition: &ToolDefinition,
    sensitivity: &str,
) -> Option<String> {
    match declared {
        Some("none") => None,
        Some(approver) => Some(approver.to_owned()),
        None => {
            let hint = |name: &str| {
                definition
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(name))
                    .and_then(serde_json::Value::as_bool)
            };
            if hint("destructiveHint") == Some(true) && hint("readOnlyHint") != Some(true) {
                Some("self".to_owned())
            } else if sensitivity == "high" {
                Some("owners".to_owned())
            } else {
                None
            }
        }
    }
}

/// A tool definition as an MCP server reports it in `tools/list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

impl ToolDefinition {
    /// The SHA-256 of the definition's canonical JSON (key order ignored): what a review
    /// approves and what the gateway pins. Fields outside the definition (`_meta`, `icons`,
    /// `execution`) are not part of it.
    pub fn hash(&self) -> String {
        // Serializing strings and JSON values cannot fail; a failure would hash `null`, which
        // matches no real definition, so the tool would be withheld rather than trusted.
        catalog::json_digest(&serde_json::to_value(self).unwrap_or_default())
    }
}

/// `POST /v1/servers/{name}/observed-tools`: tool definitions a server was seen serving (by
/// the gateway relaying its `tools/list`) that differ from the registry's record or are not in
/// it. The registry records them, which opens their review; until approved they are withheld.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ObservedTools {
    pub tools: Vec<ToolDefinition>,
}

/// `POST /v1/servers/{name}/status`, `GET /v1/status`: the outcome of the last live probe of a
/// server (the gateway connects as `switchboard-probe`, discovers or initializes, and lists
/// tools).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveStatus {
    pub server: String,
    /// Whether the last probe completed.
    pub ok: bool,
    /// How long the last probe took end to end.
    pub latency_ms: u64,
    /// Why the last probe failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub checked_at_ms: i64,
    /// When a probe last succeeded, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ok_at_ms: Option<i64>,
    /// How many tools the server listed.
    #[serde(default)]
    pub tools: u32,
    /// The protocol version the server answered with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// Why the server, though it answers MCP, cannot serve now (its `/readyz` said so: for
    /// example its backend is not connected, and how to connect one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ready: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusList {
    pub statuses: Vec<LiveStatus>,
}

/// A named policy as the registry resolved it from the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyView {
    pub name: String,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ToolView {
    #[serde(flatten)]
    pub definition: ToolDefinition,
    pub minutes_saved: f64,
    pub sensitivity: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
    /// Hex SHA-256 of the canonical JSON of the definition (name, title, description, schemas,
    /// annotations): what a review approves and the gateway pins.
    #[serde(default)]
    pub definition_hash: String,
    /// What the automated GenAI checks found in the definition.
    #[serde(default)]
    pub findings: Vec<FindingView>,
    /// The hash of the definition the last completed review approved, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_hash: Option<String>,
    /// Whether the current definition is the approved one (and so may be served to production
    /// surfaces once the server is approved).
    #[serde(default)]
    pub approved: bool,
    /// Who must approve each call before it runs (`self`, `owners`, `group:<name>`), if anyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// Whether the tool answers a preview of a call before it is proposed (the manifest's
    /// `preview`): the gateway asks for one and attaches it to the proposal.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub preview: bool,
    /// Arguments the audit never keeps (the manifest's `sensitive_arguments`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_arguments: Vec<String>,
}

/// One automated finding on a tool definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FindingView {
    pub code: String,
    pub message: String,
}

impl ToolView {
    /// A tool as the registry records it; the hash and the findings follow from the definition.
    pub fn new(
        definition: ToolDefinition,
        minutes_saved: f64,
        sensitivity: String,
        policy: Option<PolicyView>,
    ) -> ToolView {
        let json = serde_json::to_value(&definition).unwrap_or_default();
        let findings = catalog::scan_tool(&json)
            .into_iter()
            .map(|f| FindingView {
                code: f.code.to_owned(),
                message: f.message,
            })
            .collect();
        ToolView {
            definition_hash: definition.hash(),
            findings,
            definition,
            minutes_saved,
            sensitivity,
            policy,
            approved_hash: None,
            approved: false,
            approval: None,
            preview: false,
            sensitive_arguments: Vec::new(),
        }
    }

    /// The tool with the arguments the audit never keeps.
    pub fn with_sensitive_arguments(mut self, sensitive: Vec<String>) -> ToolView {
        self.sensitive_arguments = sensitive;
        self
    }

    /// The tool with who must approve its calls.
    pub fn with_preview(mut self, preview: bool) -> ToolView {
        self.preview = preview;
        self
    }

    pub fn with_approval(mut self, approval: Option<String>) -> ToolView {
        self.approval = approval;
        self
    }

    /// The tool with the hash of its approved definition.
    pub fn with_approved_hash(mut self, approved_hash: Option<String>) -> ToolView {
        self.approved = approved_hash.as_deref() == Some(self.definition_hash.as_str());
        self.approved_hash = approved_hash;
        self
    }
}

/// Everything the registry knows about one server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerView {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub description: String,
    pub owner_team: String,
    pub support_channel: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs_url: Option<String>,
    /// `public`, `internal`, `confidential` or `restricted`.
    #[serde(default = "default_classification")]
    pub data_classification: String,
    /// The server's sensitivity tier: `low`, `medium` or `high`.
    #[serde(default = "default_sensitivity")]
    pub sensitivity: String,
    pub endpoint: String,
    pub environment: String,
    /// Empty means every authenticated caller may use the server.
    pub allowed_groups: Vec<String>,
    pub status: String,
    pub registered_at_ms: i64,
    pub updated_at_ms: i64,
    pub tools: Vec<ToolView>,
    /// The server's own Cedar policies.
    #[serde(default)]
    pub policies: String,
    /// Bumped by every registration that changes what the server is or serves.
    #[serde(default)]
    pub revision: i64,
    /// Approved for production: every review the server's access and data handling needs is
    /// approved. Production surfaces reach only approved servers, and only their approved tools.
    #[serde(default)]
    pub approved: bool,
    /// The owner team's owners (users), who may use the server from development surfaces
    /// before it is approved.
    #[serde(default)]
    pub owner_users: Vec<String>,
    /// The owner team's member groups, likewise.
    #[serde(default)]
    pub owner_groups: Vec<String>,
}

fn default_classification() -> String {
    "internal".to_owned()
}

fn default_sensitivity() -> String {
    "low".to_owned()
}

impl ServerView {
    /// Whether `who` belongs to the server's owner team (an owner, or in a member group).
    pub fn is_owned_by(&self, who: &catalog::Principal) -> bool {
        self.owner_users.contains(&who.user) || who.in_any(&self.owner_groups)
    }

    /// The server as a gateway keeps it to serve calls, once its policy facts are taken
    /// ([`policy_facts`] reads the full record): each tool keeps its name, its definition's hash
    /// (what pinning compares), its output schema, the header mirrors of its input schema
    /// (properties marked `x-mcp-header`, SEP-2243), and everything outside the definition that
    /// a call reads (approval, preview, sensitive arguments, minutes saved); titles,
    /// descriptions, annotations, the rest of the input schema, the findings and the approved
    /// hash are dropped. Two compacted records are equal when the full ones differ only in what
    /// was dropped, which the definition's hash still tells apart. With 10,000 tools the full
    /// records were ~2 KB a tool, most of it small JSON objects of input schemas.
    pub fn compacted(mut self) -> ServerView {
        for tool in &mut self.tools {
            let definition = &mut tool.definition;
            definition.title = None;
            definition.description = None;
            definition.annotations = None;
            definition.input_schema = header_mirrors(&definition.input_schema);
            tool.findings = Vec::new();
            tool.approved_hash = None;
        }
        self.tools.shrink_to_fit();
        self
    }
}

/// The part of an input schema a gateway reads: `{"properties": {name: {"x-mcp-header":
/// header}}}` for each property mirrored into a header, or `{}` when none is.
fn header_mirrors(schema: &serde_json::Value) -> serde_json::Value {
    let mirrored: serde_json::Map<String, serde_json::Value> = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(name, property)| {
            let header = property.get("x-mcp-header")?;
            Some((name.clone(), serde_json::json!({ "x-mcp-header": header })))
        })
        .collect();
    if mirrored.is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::json!({ "properties": mirrored })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerList {
    pub servers: Vec<ServerView>,
}

/// `GET /v1/access?user=&groups=&server=[&tool=]`: may this caller use server X (or tool T)?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessAnswer {
    pub allowed: bool,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// `POST /v1/gateways/heartbeat`: a gateway replica says it is alive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayHeartbeat {
    /// The replica's id, fresh at every start.
    pub id: String,
    /// Where the replica listens.
    pub url: String,
}

/// How many gateway replicas announced themselves lately (the caller included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GatewayReplicas {
    pub live: u32,
}

/// `GET /v1/discovery[?channel=]`: a chat bot names the channel it speaks in (a policy
/// dimension), as it does to the gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct DiscoveryQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

/// `GET /v1/discovery`: the servers and tools the caller of the request may use.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Discovery {
    pub user: String,
    pub groups: Vec<String>,
    pub servers: Vec<DiscoveredServer>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    /// The call needs a person's approval: it became a proposal and did not run.
    PendingApproval,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ToolError => "tool_error",
            Outcome::Denied => "denied",
            Outcome::Error => "error",
            Outcome::InputRequired => "input_required",
            Outcome::PendingApproval => "pending_approval",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        [
            Outcome::Ok,
            Outcome::ToolError,
            Outcome::Denied,
            Outcome::Error,
            Outcome::InputRequired,
            Outcome::PendingApproval,
        ]
        .into_iter()
        .find(|o| o.as_str() == s)
    }
}

/// One audited call. Arguments are never stored, only their SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Unique id chosen by the writer, so a retried write is stored once.
    pub id: String,
    pub time_ms: i64,
    pub user: String,
    pub groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub surface: Option<String>,
    /// The chat channel of a bot's call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
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
    /// The call's arguments with the manifest's sensitive arguments and secret-looking fields
    /// redacted (`catalog::redact_arguments`); absent when too large to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<serde_json::Value>,
    /// The approval proposal the call became, or ran under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proposal: Option<String>,
    /// The owner team of the server at the time of the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The owner's estimate of the minutes one successful call of the tool saves, at the time
    /// of the call (the north-star's unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_saved: Option<f64>,
    /// The W3C trace id of the call, when it was traced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// `GET /v1/audit?server=&user=&limit=`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub records: Vec<AuditRecord>,
}

/// The body of every error response: a stable code, a message for people, and the request id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// `GET /v1/policy/check`: what would the policies decide, and which policies decide it?
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct PolicyQuery {
    /// The user, or with `service=true` the SPIFFE ID of a service.
    pub user: String,
    #[serde(default)]
    pub service: bool,
    /// Comma-separated group names.
    #[serde(default)]
    pub groups: String,
    /// `web-chat`, `bot`, `ide`, `api`, ...
    #[serde(default = "default_surface")]
    pub surface: String,
    #[serde(default)]
    pub channel: Option<String>,
    pub server: String,
    /// Without a tool, the question is whether the caller may connect to the server.
    #[serde(default)]
    pub tool: Option<String>,
    /// The call's arguments as a JSON object; without them, whether the tool is listed.
    #[serde(default)]
    pub args: Option<String>,
}

pub fn default_surface() -> String {
    "api".to_owned()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PolicyAnswer {
    pub allowed: bool,
    /// The deciding policies' ids.
    pub policies: Vec<String>,
    pub reason: String,
    /// For an allowed call with arguments: who must approve it before it runs, if anyone
    /// (`self`, `owners`, `group:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<String>,
    /// The approval rules that matched, strictest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approval_policies: Vec<String>,
}

/// `GET /v1/policy/who-can?server=&tool=[&surface=&channel=]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct WhoCanQuery {
    pub server: String,
    pub tool: String,
    #[serde(default = "default_surface")]
    pub surface: String,
    #[serde(default)]
    pub channel: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoCan {
    /// Every authenticated user may call it.
    pub any_user: bool,
    /// The groups whose members may call it.
    pub groups: Vec<String>,
    /// The services (SPIFFE IDs) the policies name that may call it.
    #[serde(default)]
    pub services: Vec<String>,
}

/// `GET /v1/policies/platform`: the policies that apply to every server.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformPolicies {
    pub policies: String,
    /// The surfaces that count as development: owners reach servers and tools that are not yet
    /// approved for production only from these.
    #[serde(default)]
    pub dev_surfaces: Vec<String>,
}

/// `GET /v1/catalog/version`: a fingerprint of the catalog and platform policies that changes
/// whenever anything the gateway decides with does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CatalogVersion {
    pub version: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(annotations: serde_json::Value) -> ToolDefinition {
        ToolDefinition {
            name: "t".into(),
            title: None,
            description: None,
            input_schema: serde_json::json!({"type": "object"}),
            output_schema: None,
            annotations: Some(annotations),
        }
    }

    #[test]
    fn approval_defaults_follow_annotations_and_sensitivity() {
        let destructive = definition(serde_json::json!({"destructiveHint": true}));
        let read_only =
            definition(serde_json::json!({"readOnlyHint": true, "destructiveHint": true}));
        let plain = definition(serde_json::json!({}));
        assert_eq!(
            approval_for(None, &destructive, "low").as_deref(),
            Some("self")
        );
        assert_eq!(approval_for(None, &read_only, "low"), None);
        assert_eq!(
            approval_for(None, &plain, "high").as_deref(),
            Some("owners")
        );
        assert_eq!(approval_for(None, &plain, "medium"), None);
        assert_eq!(approval_for(Some("none"), &destructive, "high"), None);
        assert_eq!(
            approval_for(Some("group:dba"), &plain, "low").as_deref(),
            Some("group:dba")
        );
    }

    /// A server with `tool`, titled `S`.
    fn server_with(tool: ToolView) -> ServerView {
        let mut server = crate::governance::tests::server(vec![tool], true);
        server.title = Some("S".into());
        server
    }

    #[test]
    fn a_compacted_server_keeps_what_calls_read_and_drops_what_people_read() {
        let definition = ToolDefinition {
            name: "query".into(),
            title: Some("Query".into()),
            description: Some("Runs a query.".into()),
            input_schema: serde_json::json!({
                "type": "object",
                "properties": {
                    "region": {"type": "string", "x-mcp-header": "Region"},
                    "sql": {"type": "string", "description": "The query."}
                },
                "required": ["sql"]
            }),
            output_schema: Some(serde_json::json!({"type": "object"})),
            annotations: Some(serde_json::json!({"readOnlyHint": true})),
        };
        let tool = ToolView::new(definition.clone(), 2.0, "low".into(), None)
            .with_approved_hash(Some(definition.hash()))
            .with_preview(true)
            .with_approval(Some("owners".into()))
            .with_sensitive_arguments(vec!["sql".into()]);
        let full = server_with(tool);
        let compact = full.clone().compacted();
        let kept = &compact.tools[0];
        assert_eq!(kept.definition.name, "query");
        assert_eq!(kept.definition_hash, definition.hash());
        assert!(kept.approved && kept.preview);
        assert_eq!(kept.approval.as_deref(), Some("owners"));
        assert_eq!(kept.sensitive_arguments, ["sql"]);
        assert_eq!(kept.minutes_saved, 2.0);
        assert_eq!(kept.definition.output_schema, definition.output_schema);
        assert_eq!(
            kept.definition.input_schema,
            serde_json::json!({"properties": {"region": {"x-mcp-header": "Region"}}})
        );
        assert_eq!(kept.definition.title, None);
        assert_eq!(kept.definition.description, None);
        assert_eq!(kept.definition.annotations, None);
        assert_eq!(kept.approved_hash, None);
        // The server's own record is whole: only tools are compacted.
        assert_eq!(compact.title.as_deref(), Some("S"));

        // No mirrored property: an empty schema.
        let mut plain = definition.clone();
        plain.input_schema = serde_json::json!({"type": "object", "properties": {"sql": {}}});
        let plain = server_with(ToolView::new(plain, 1.0, "low".into(), None)).compacted();
        assert_eq!(
            plain.tools[0].definition.input_schema,
            serde_json::json!({})
        );

        // A change people read changes the hash, so compacted records still differ.
        let mut described = definition.clone();
        described.description = Some("Runs another query.".into());
        let described = server_with(ToolView::new(described, 2.0, "low".into(), None)).compacted();
        assert_ne!(described.tools[0], compact.tools[0]);
    }
}
