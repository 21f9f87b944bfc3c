//! `/v1/servers`: register, list and read servers and their tools.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State, rejection::JsonRejection},
    http::StatusCode,
};
use registry_api::{RegisterServer, ServerList, ServerView, ToolView};

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
};

pub(crate) async fn register(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    body: Result<Json<RegisterServer>, JsonRejection>,
) -> Result<(StatusCode, Json<ServerView>), ApiError> {
    caller.require_any(&state.writer_groups, "register servers")?;
    let Json(registration) = body.map_err(|e| ApiError::invalid(e.body_text()))?;
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
        && let Err(policy_problems) =
            policy::compile_server(&registry_api::policy_facts(&registration.preview()))
    {
        problems.extend(policy_problems.iter().map(|p| format!("policies: {p}")));
    }
    if !problems.is_empty() {
        return Err(ApiError::invalid(problems.join("; ")));
    }
    let now = now_ms();
    let server = state.store.upsert_server(&registration, now).await?;
    state.reload().await.map_err(|e| {
        tracing::error!(error = %e, "failed to reload policies");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server was stored but the catalog could not be reloaded",
        )
    })?;
    tracing::info!(server = %server.name, by = %caller.0.user, tools = server.tools.len(), "registered server");
    Ok((StatusCode::OK, Json(server)))
}

pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Result<Json<ServerList>, ApiError> {
    Ok(Json(ServerList {
        servers: state.snapshot().servers.clone(),
    }))
}

pub(crate) async fn get(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<ServerView>, ApiError> {
    Ok(Json(state.store.get_server(&name).await?))
}

pub(crate) async fn tools(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Vec<ToolView>>, ApiError> {
    Ok(Json(state.store.get_server(&name).await?.tools))
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
