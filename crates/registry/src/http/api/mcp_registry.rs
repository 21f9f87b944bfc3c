//! `/v0.1/servers`: the production-approved catalog in the official MCP Registry API, so IDE
//! galleries and registry aggregators can read it. Only approved servers are published; a caller
//! who presents a token sees only the servers they may use.

use std::sync::Arc;

use axum::{
    Json,
    extract::{FromRequestParts, Path, Query, State, rejection::QueryRejection},
    http::request::Parts,
};
use chrono::{DateTime, SecondsFormat, Utc};
use policy::Principal;
use registry_api::{
    ServerView,
    mcp_registry::{
        GOVERNANCE_META, ListMetadata, ListQuery, OFFICIAL_META, Remote, ServerDetail,
        ServerListV0, ServerResponse,
    },
};

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
    service,
};

const SCHEMA: &str = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
const DEFAULT_LIMIT: usize = 30;
const MAX_LIMIT: usize = 100;

/// `GET /v0.1/servers?cursor=&limit=&search=&version=&updated_since=`.
#[utoipa::path(get, operation_id = "listPublishedServers", path = "/v0.1/servers", tag = "mcp-registry", description = "The production-approved catalog in the official MCP Registry API.", params(registry_api::mcp_registry::ListQuery), responses((status = 200, description = "OK", body = registry_api::mcp_registry::ServerListV0), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security((), ("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<Arc<RegistryState>>,
    parts: Parts,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<ServerListV0>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let caller = caller(&state, parts).await?;
    let limit = match q.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::invalid(format!(
                "limit: must be between 1 and {MAX_LIMIT}, got {n}"
            )));
        }
    };
    let since = match q.updated_since.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| {
                    ApiError::invalid(format!(
                        "updated_since: not an RFC 3339 time ({e}), e.g. 2026-01-31T12:00:00Z"
                    ))
                })?
                .timestamp_millis(),
        ),
    };
    let search = q.search.as_deref().unwrap_or("").to_lowercase();
    let cursor = q.cursor.as_deref().unwrap_or("");
    let snapshot = state.snapshot();
    let mut page: Vec<&ServerView> = published(&state, &snapshot.servers, caller.as_ref())
        .filter(|s| s.name.as_str() > cursor)
        .filter(|s| search.is_empty() || published_name(&state, s).to_lowercase().contains(&search))
        .filter(|s| match q.version.as_deref() {
            None | Some("") | Some("latest") => true,
            Some(v) => s.version == v,
        })
        .filter(|s| since.is_none_or(|t| s.updated_at_ms >= t))
        .take(limit + 1)
        .collect();
    // The cursor is the last name served: pages follow name order.
    let next_cursor = (page.len() > limit).then(|| {
        page.truncate(limit);
        page[limit - 1].name.clone()
    });
    let servers: Vec<ServerResponse> = page.into_iter().map(|s| entry(&state, s)).collect();
    Ok(Json(ServerListV0 {
        metadata: ListMetadata {
            next_cursor,
            count: servers.len(),
        },
        servers,
    }))
}

/// `GET /v0.1/servers/{serverName}/versions`: the one (current) version of an approved server.
#[utoipa::path(get, operation_id = "listPublishedServerVersions", path = "/v0.1/servers/{name}/versions", tag = "mcp-registry", description = "The versions of an approved server (the registry keeps the current one).", params(("name" = String, Path, description = "`<namespace>/<server>`, URL-encoded")), responses((status = 200, description = "OK", body = registry_api::mcp_registry::ServerListV0), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security((), ("bearer" = [])))]
pub(crate) async fn versions(
    State(state): State<Arc<RegistryState>>,
    parts: Parts,
    Path(name): Path<String>,
) -> Result<Json<ServerListV0>, ApiError> {
    let caller = caller(&state, parts).await?;
    let snapshot = state.snapshot();
    let server = find(&state, &snapshot.servers, caller.as_ref(), &name)?;
    Ok(Json(ServerListV0 {
        servers: vec![entry(&state, server)],
        metadata: ListMetadata {
            next_cursor: None,
            count: 1,
        },
    }))
}

/// `GET /v0.1/servers/{serverName}/versions/{version}` (`latest` or the current version).
#[utoipa::path(get, operation_id = "getPublishedServerVersion", path = "/v0.1/servers/{name}/versions/{version}", tag = "mcp-registry", description = "One version (`latest` or the current one) of an approved server.", params(("name" = String, Path, description = "`<namespace>/<server>`, URL-encoded"), ("version" = String, Path, description = "`latest` or an exact version")), responses((status = 200, description = "OK", body = registry_api::mcp_registry::ServerResponse), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody)), security((), ("bearer" = [])))]
pub(crate) async fn version(
    State(state): State<Arc<RegistryState>>,
    parts: Parts,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ServerResponse>, ApiError> {
    let caller = caller(&state, parts).await?;
    let snapshot = state.snapshot();
    let server = find(&state, &snapshot.servers, caller.as_ref(), &name)?;
    if version != "latest" && version != server.version {
        return Err(ApiError::not_found(format!(
            "server {name} has no version {version:?}; the registry keeps the current one, {}",
            server.version
        )));
    }
    Ok(Json(entry(&state, server)))
}

/// The caller, when a token is presented; `None` for anonymous readers where allowed.
async fn caller(state: &Arc<RegistryState>, mut parts: Parts) -> Result<Option<Caller>, ApiError> {
    if parts
        .headers
        .contains_key(axum::http::header::AUTHORIZATION)
        || !state.publication.anonymous
    {
        return Caller::from_request_parts(&mut parts, state)
            .await
            .map(Some);
    }
    Ok(None)
}

/// Approved servers, in name order, that the caller (if any) may connect to.
fn published<'a>(
    state: &'a RegistryState,
    servers: &'a [ServerView],
    caller: Option<&'a Caller>,
) -> impl Iterator<Item = &'a ServerView> + 'a {
    let engine = state.engine();
    servers.iter().filter(move |s| {
        s.approved
            && caller.is_none_or(|Caller(who, surface)| {
                let principal = Principal::User {
                    id: who.user.clone(),
                    groups: who.groups.clone(),
                };
                service::decide(&engine, &principal, &s.name, None, surface, None, None).allowed
            })
    })
}

/// The server named `name` (published or plain), if published to this caller.
fn find<'a>(
    state: &'a RegistryState,
    servers: &'a [ServerView],
    caller: Option<&'a Caller>,
    name: &str,
) -> Result<&'a ServerView, ApiError> {
    let plain = name
        .strip_prefix(&format!("{}/", state.publication.namespace))
        .unwrap_or(name);
    published(state, servers, caller)
        .find(|s| s.name == plain)
        .ok_or_else(|| ApiError::not_found(format!("no approved server named {name}")))
}

fn published_name(state: &RegistryState, server: &ServerView) -> String {
    format!("{}/{}", state.publication.namespace, server.name)
}

fn entry(state: &RegistryState, server: &ServerView) -> ServerResponse {
    let time = |ms: i64| {
        DateTime::<Utc>::from_timestamp_millis(ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true)
    };
    let description: String = server.description.chars().take(100).collect();
    let remotes = state
        .publication
        .gateway_url
        .iter()
        .map(|base| Remote {
            transport: "streamable-http".into(),
            url: format!(
                "{}{}",
                base.trim_end_matches('/'),
                service::gateway_path(&server.name)
            ),
        })
        .collect();
    let mut meta = serde_json::Map::new();
    meta.insert(
        OFFICIAL_META.into(),
        serde_json::json!({
            "status": "active",
            "publishedAt": time(server.registered_at_ms),
            "updatedAt": time(server.updated_at_ms),
            "isLatest": true,
        }),
    );
    meta.insert(
        GOVERNANCE_META.into(),
        serde_json::json!({
            "approvedForProduction": server.approved,
            "ownerTeam": server.owner_team,
            "supportChannel": server.support_channel,
            "dataClassification": server.data_classification,
            "sensitivity": server.sensitivity,
            "environment": server.environment,
            "tools": server.tools.iter().filter(|t| t.approved).map(|t| &t.definition.name).collect::<Vec<_>>(),
        }),
    );
    ServerResponse {
        server: ServerDetail {
            schema: SCHEMA.into(),
            name: published_name(state, server),
            description,
            title: server.title.clone(),
            version: server.version.clone(),
            website_url: server.docs_url.clone(),
            remotes,
        },
        meta,
    }
}
