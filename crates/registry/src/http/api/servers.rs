//! `/v1/servers`: register, list and read servers and their tools.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use registry_api::{
    LiveStatus, ObservedTools, RegisterServer, ServerList, ServerView, StatusList, ToolView,
};

use crate::{
    MAX_TOOLS_PER_SERVER, RegistryState,
    http::{auth::Caller, error::ApiError},
};

#[utoipa::path(post, operation_id = "registerServer", path = "/v1/servers", tag = "servers", description = "Register a server, or update it when the name is known. Opens the reviews the change needs.", request_body = registry_api::RegisterServer, responses((status = 200, description = "OK", body = registry_api::ServerView), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn register(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<RegisterServer>, JsonRejection>,
) -> Result<(StatusCode, Json<ServerView>), ApiError> {
    caller.require_any(&state.writer_groups, "register servers")?;
    let Json(registration) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    validate(&state, &registration)?;
    let server = state
        .store
        .upsert_server(&registration, &caller.0.user, now_ms())
        .await?;
    reload(&state, "the server was stored").await?;
    tracing::info!(server = %server.name, by = %caller.0.user, tools = server.tools.len(), "registered server");
    Ok((StatusCode::OK, Json(server)))
}

/// Every problem with a registration, reported at once: the manifest, the environment and
/// endpoint, tools listed twice or described but not served, and the Cedar policies.
fn validate(state: &RegistryState, registration: &RegisterServer) -> Result<(), ApiError> {
    let mut problems: Vec<String> = registration
        .manifest
        .validate()
        .iter()
        .map(ToString::to_string)
        .collect();
    if !matches!(
        registration.environment.as_str(),
        "dev" | "staging" | "prod"
    ) {
        problems.push(format!(
            "environment: must be dev, staging or prod, got {:?}",
            registration.environment
        ));
    }
    if !(registration.endpoint.starts_with("http://")
        || registration.endpoint.starts_with("https://"))
    {
        problems.push(format!(
            "endpoint: must be an http(s) URL, got {:?}",
            registration.endpoint
        ));
    }
    if registration.tools.len() > MAX_TOOLS_PER_SERVER {
        problems.push(format!(
            "tools: a server may list at most {MAX_TOOLS_PER_SERVER} tools, this one lists {}",
            registration.tools.len()
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for tool in &registration.tools {
        if !seen.insert(tool.name.as_str()) {
            problems.push(format!("tools: {} is listed twice", tool.name));
        }
    }
    for name in registration.manifest.tools.keys() {
        if !seen.contains(name.as_str()) {
            problems.push(format!(
                "tools.{name}: described in the manifest but not served"
            ));
        }
    }
    if problems.is_empty()
        && let Err(policy_problems) = policy::compile_server(&registry_api::policy_facts(
            &registration.preview(),
            &state.platform.dev_surfaces,
        ))
    {
        problems.extend(policy_problems.iter().map(|p| format!("policies: {p}")));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(problems.join("; ")))
    }
}

/// `POST /v1/servers/{name}/observed-tools`: the gateway saw the server serve these definitions.
/// Recording them opens their review (they stay withheld from production until approved).
#[utoipa::path(post, operation_id = "reportObservedTools", path = "/v1/servers/{name}/observed-tools", tag = "servers", description = "Tool definitions a server was seen serving that differ from the record (the gateway reports them); recording them opens their review.", params(("name" = String, Path, description = "The server name")), request_body = registry_api::ObservedTools, responses((status = 200, description = "OK", body = registry_api::ServerView), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn observed_tools(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<ObservedTools>, JsonRejection>,
) -> Result<Json<ServerView>, ApiError> {
    caller.require_any(&state.writer_groups, "report observed tools")?;
    let Json(observed) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    if observed.tools.len() > 1000 {
        return Err(ApiError::invalid(
            "tools: at most 1000 definitions per report",
        ));
    }
    let mut registration = state.store.get_registration(&name).await?;
    if !registry_api::merge_observed(&mut registration, &observed.tools) {
        return Ok(Json(state.store.get_server(&name).await?));
    }
    validate(&state, &registration)?;
    let server = state
        .store
        .upsert_server(&registration, &caller.0.user, now_ms())
        .await?;
    reload(&state, "the observed tools were recorded").await?;
    tracing::warn!(server = %name, by = %caller.0.user, tools = observed.tools.len(),
        "recorded tool definitions observed live that differ from the registry's; they await review");
    Ok(Json(server))
}

/// `POST /v1/servers/{name}/status`: the outcome of a live probe (the gateway's prober).
#[utoipa::path(post, operation_id = "reportStatus", path = "/v1/servers/{name}/status", tag = "status", description = "Record the outcome of a live probe (the gateway's prober).", params(("name" = String, Path, description = "The server name")), request_body = registry_api::LiveStatus, responses((status = 200, description = "OK", body = registry_api::LiveStatus), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn put_status(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Result<Json<LiveStatus>, JsonRejection>,
) -> Result<Json<LiveStatus>, ApiError> {
    caller.require_any(&state.writer_groups, "report server status")?;
    let Json(mut status) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    status.server = name;
    if let Some(error) = &mut status.error {
        // Bounded: an error text comes from a remote server.
        if let Some((cut, _)) = error.char_indices().nth(1000) {
            error.truncate(cut);
        }
    }
    Ok(Json(state.store.put_status(&status).await?))
}

/// How long a gateway replica counts as alive after its last heartbeat.
const REPLICA_ALIVE_MS: i64 = 15_000;

/// `POST /v1/gateways/heartbeat`: a gateway replica is alive; how many are.
#[utoipa::path(post, operation_id = "gatewayHeartbeat", path = "/v1/gateways/heartbeat", tag = "status", description = "A gateway replica says it is alive; the answer says how many replicas were alive in the last 15 s (each takes its share of the per-user rate limits).", request_body = registry_api::GatewayHeartbeat, responses((status = 200, description = "OK", body = registry_api::GatewayReplicas), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 403, description = "The caller lacks the group this needs", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn gateway_heartbeat(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<registry_api::GatewayHeartbeat>, JsonRejection>,
) -> Result<Json<registry_api::GatewayReplicas>, ApiError> {
    caller.require_any(&state.writer_groups, "announce a gateway replica")?;
    let Json(beat) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
    if beat.id.is_empty() || beat.id.len() > 128 || beat.url.len() > 2048 {
        return Err(ApiError::invalid(
            "id has 1 to 128 characters and url at most 2048",
        ));
    }
    let now = now_ms();
    let live = state
        .store
        .gateway_heartbeat(&beat.id, &beat.url, now, now - REPLICA_ALIVE_MS)
        .await?;
    Ok(Json(registry_api::GatewayReplicas { live }))
}

/// `GET /v1/status`: the last live probe of every server.
#[utoipa::path(get, operation_id = "listStatuses", path = "/v1/status", tag = "status", description = "The last live probe of every server.", responses((status = 200, description = "OK", body = registry_api::StatusList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn statuses(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Result<Json<StatusList>, ApiError> {
    Ok(Json(StatusList {
        statuses: state.store.list_statuses().await?,
    }))
}

/// `GET /v1/servers/{name}/status`.
#[utoipa::path(get, operation_id = "getStatus", path = "/v1/servers/{name}/status", tag = "status", description = "The last live probe of a server.", params(("name" = String, Path, description = "The server name")), responses((status = 200, description = "OK", body = registry_api::LiveStatus), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn status(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<LiveStatus>, ApiError> {
    state.store.get_server(&name).await?;
    state
        .store
        .list_statuses()
        .await?
        .into_iter()
        .find(|s| s.server == name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("server {name} has not been probed yet")))
}

#[utoipa::path(get, operation_id = "listServers", path = "/v1/servers", tag = "servers", description = "Every registered server with its tools, approval and owners.", responses((status = 200, description = "OK", body = registry_api::ServerList), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Result<Json<ServerList>, ApiError> {
    Ok(Json(ServerList {
        servers: state.snapshot().servers.clone(),
    }))
}

#[utoipa::path(get, operation_id = "getServer", path = "/v1/servers/{name}", tag = "servers", description = "One server.", params(("name" = String, Path, description = "The server name")), responses((status = 200, description = "OK", body = registry_api::ServerView), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ServerView>, ApiError> {
    Ok(Json(state.store.get_server(&name).await?))
}

#[utoipa::path(get, operation_id = "listServerTools", path = "/v1/servers/{name}/tools", tag = "servers", description = "A server's tools with their definition hashes, approval and automated findings.", params(("name" = String, Path, description = "The server name")), responses((status = 200, description = "OK", body = Vec<registry_api::ToolView>), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn tools(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<ToolView>>, ApiError> {
    Ok(Json(state.store.get_server(&name).await?.tools))
}

/// Rebuilds the snapshot after a write, so the writer's next read sees it.
pub(crate) async fn reload(state: &RegistryState, done: &str) -> Result<(), ApiError> {
    state.reload().await.map_err(|e| {
        tracing::error!(error = %e, "failed to reload the catalog");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("{done} but the catalog could not be reloaded"),
        )
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
