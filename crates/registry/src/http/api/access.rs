//! `/v1/access` ("may user U use server X?"), `/v1/discovery` ("what may I use?") and the policy
//! explanations `/v1/policy/check` and `/v1/policy/who-can`.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Query, State, rejection::QueryRejection},
    http::header,
    response::{IntoResponse, Response},
};
use policy::Principal;
use registry_api::{
    AccessAnswer, AccessQuery, Discovery, DiscoveryQuery, PlatformPolicies, PolicyAnswer,
    PolicyQuery, WhoCan, WhoCanQuery,
};

use crate::{
    RegistryState,
    http::{auth::Caller, error::ApiError},
    service,
};

#[utoipa::path(get, operation_id = "checkAccess", path = "/v1/access", tag = "access", description = "May user U (in groups G) use server X, or tool T, from the caller's surface?", params(registry_api::AccessQuery), responses((status = 200, description = "OK", body = registry_api::AccessAnswer), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn check(
    State(state): State<Arc<RegistryState>>,
    caller: Caller,
    query: Result<Query<AccessQuery>, QueryRejection>,
) -> Result<Json<AccessAnswer>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    state.store.get_server(&q.server).await?;
    let who = Principal::User {
        id: q.user,
        groups: catalog::parse_groups(&q.groups),
    };
    Ok(Json(service::access(
        &state.engine(),
        &who,
        &q.server,
        q.tool.as_deref(),
        &caller.1,
    )))
}

#[utoipa::path(get, operation_id = "discover", path = "/v1/discovery", tag = "access", description = "The servers and tools the caller may use from its surface (and, for a chat bot, the channel it speaks in).", params(registry_api::DiscoveryQuery), responses((status = 200, description = "OK; the ETag header tags the answer", body = registry_api::Discovery), (status = 304, description = "Not modified: the answer still has the tag sent in If-None-Match"), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn discovery(
    State(state): State<Arc<RegistryState>>,
    if_none_match: axum::http::HeaderMap,
    caller: Caller,
    query: Result<Query<DiscoveryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Caller(who, surface) = caller;
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let channel = q.channel.as_deref().filter(|c| !c.is_empty());
    let snapshot = state.snapshot();
    let body = snapshot
        .discovery(&who.user, &who.groups, &surface, channel, || {
            let principal = Principal::User {
                id: who.user.clone(),
                groups: who.groups.clone(),
            };
            let servers = service::discover(
                &snapshot.engine,
                &principal,
                &surface,
                channel,
                &snapshot.servers,
            );
            serde_json::to_vec(&Discovery {
                user: who.user.clone(),
                groups: who.groups.clone(),
                servers,
            })
        })
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("could not encode the discovery answer: {e}"),
            )
        })?;
    // The answer depends on the caller: caches may keep it only privately, and must ask again
    // (with the tag) before reusing it.
    let revalidated = if_none_match
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == body.etag || t == "*")
        });
    let headers = [
        (header::ETAG, body.etag),
        (header::CACHE_CONTROL, "private, no-cache".to_owned()),
    ];
    if revalidated {
        return Ok((axum::http::StatusCode::NOT_MODIFIED, headers).into_response());
    }
    Ok((
        headers,
        [(header::CONTENT_TYPE, "application/json")],
        body.body,
    )
        .into_response())
}

#[utoipa::path(get, operation_id = "checkPolicy", path = "/v1/policy/check", tag = "policy", description = "What the policies decide for a caller, server, tool and arguments, and which policies decide it.", params(registry_api::PolicyQuery), responses((status = 200, description = "OK", body = registry_api::PolicyAnswer), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn policy_check(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<PolicyQuery>, QueryRejection>,
) -> Result<Json<PolicyAnswer>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    state.store.get_server(&q.server).await?;
    let args = match &q.args {
        Some(text) => {
            let value: serde_json::Value = serde_json::from_str(text)
                .map_err(|e| ApiError::invalid(format!("args is not valid JSON: {e}")))?;
            if !value.is_object() {
                return Err(ApiError::invalid("args must be a JSON object"));
            }
            Some(value)
        }
        None => None,
    };
    let groups = catalog::parse_groups(&q.groups);
    let who = if q.service {
        Principal::Service { id: q.user, groups }
    } else {
        Principal::User { id: q.user, groups }
    };
    let engine = state.engine();
    let verdict = service::decide(
        &engine,
        &who,
        &q.server,
        q.tool.as_deref(),
        &q.surface,
        q.channel.as_deref(),
        args.as_ref(),
    );
    let allowed = verdict.allowed;
    let mut answer = service::answer(verdict);
    // An allowed call may still wait for a person.
    if allowed && let (Some(tool), Some(args)) = (q.tool.as_deref(), args.as_ref()) {
        let need = engine.approval(&policy::Request {
            principal: &who,
            action: policy::Action::Call,
            server: &q.server,
            tool: Some(tool),
            surface: &q.surface,
            channel: q.channel.as_deref(),
            args: Some(args),
        });
        if let Some(need) = need {
            answer.approval = Some(need.approver);
            answer.approval_policies = need.policies;
        }
    }
    Ok(Json(answer))
}

#[utoipa::path(get, operation_id = "whoCan", path = "/v1/policy/who-can", tag = "policy", description = "Which groups and services may call a tool.", params(registry_api::WhoCanQuery), responses((status = 200, description = "OK", body = registry_api::WhoCan), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody), (status = 404, description = "Not found", body = registry_api::ErrorBody), (status = 422, description = "Invalid input; the message lists every problem", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn who_can(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
    query: Result<Query<WhoCanQuery>, QueryRejection>,
) -> Result<Json<WhoCan>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::invalid(e.body_text()))?;
    let server = state.store.get_server(&q.server).await?;
    if !server.tools.iter().any(|t| t.definition.name == q.tool) {
        return Err(ApiError::not_found(format!(
            "server {} has no tool named {}",
            q.server, q.tool
        )));
    }
    let who = state
        .engine()
        .who_can(&q.server, &q.tool, &q.surface, q.channel.as_deref());
    Ok(Json(WhoCan {
        any_user: who.any_user,
        groups: who.groups,
        services: who.services,
    }))
}

#[utoipa::path(get, operation_id = "getPlatformPolicies", path = "/v1/policies/platform", tag = "policy", description = "The Cedar policies that apply to every server, and the development surfaces.", responses((status = 200, description = "OK", body = registry_api::PlatformPolicies), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn platform_policies(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Json<PlatformPolicies> {
    Json(state.platform.clone())
}

/// `GET /v1/catalog/version`: cheap to poll; the gateway re-reads the catalog only when it moves.
#[utoipa::path(get, operation_id = "getCatalogVersion", path = "/v1/catalog/version", tag = "servers", description = "A fingerprint of the catalog and platform policies; cheap to poll.", responses((status = 200, description = "OK", body = registry_api::CatalogVersion), (status = 401, description = "No valid bearer token", body = registry_api::ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn catalog_version(
    State(state): State<Arc<RegistryState>>,
    _caller: Caller,
) -> Json<registry_api::CatalogVersion> {
    Json(registry_api::CatalogVersion {
        version: state.catalog_version(),
    })
}
