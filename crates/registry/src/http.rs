//! The registry's HTTP surface: builds the axum router; handlers live in `http/api/`.

mod api;
mod auth;
mod error;

use std::sync::Arc;

use axum::{
    Json, Router,
    routing::{get, post},
};

use crate::RegistryState;

pub fn router(state: Arc<RegistryState>) -> Router {
    let state_store = state.store.clone();
    let api = Router::new()
        .route(
            "/v1/servers",
            get(api::servers::list).post(api::servers::register),
        )
        .route("/v1/servers/{name}", get(api::servers::get))
        .route("/v1/servers/{name}/tools", get(api::servers::tools))
        .route(
            "/v1/servers/{name}/observed-tools",
            post(api::servers::observed_tools),
        )
        .route(
            "/v1/servers/{name}/status",
            get(api::servers::status).post(api::servers::put_status),
        )
        .route("/v1/status", get(api::servers::statuses))
        .route(
            "/v1/servers/{name}/reviews",
            get(api::governance::server_reviews),
        )
        .route("/v1/access", get(api::access::check))
        .route("/v1/discovery", get(api::access::discovery))
        .route("/v1/policy/check", get(api::access::policy_check))
        .route("/v1/policy/who-can", get(api::access::who_can))
        .route("/v1/policies/platform", get(api::access::platform_policies))
        .route("/v1/audit", post(api::audit::append).get(api::audit::list))
        .route("/v1/catalog/version", get(api::access::catalog_version))
        .route("/v1/teams", get(api::governance::list_teams))
        .route(
            "/v1/teams/{name}",
            get(api::governance::get_team).put(api::governance::put_team),
        )
        .route("/v1/reviews", get(api::governance::list_reviews))
        .route("/v1/reviews/{id}", get(api::governance::get_review))
        .route("/v1/reviews/{id}/approve", post(api::governance::approve))
        .route("/v1/reviews/{id}/reject", post(api::governance::reject))
        .route("/v1/changes", get(api::governance::list_changes))
        .route("/v0.1/servers", get(api::mcp_registry::list))
        .route(
            "/v0.1/servers/{name}/versions",
            get(api::mcp_registry::versions),
        )
        .route(
            "/v0.1/servers/{name}/versions/{version}",
            get(api::mcp_registry::version),
        )
        .route("/dev-issuer/jwks.json", get(dev_issuer_jwks))
        .with_state(state);
    let store = state_store;
    api.merge(service_kit::readiness_routes(move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    }))
}

async fn dev_issuer_jwks(
    axum::extract::State(state): axum::extract::State<Arc<RegistryState>>,
) -> Result<Json<serde_json::Value>, error::ApiError> {
    state
        .dev_issuer_jwks
        .clone()
        .map(Json)
        .ok_or_else(|| error::ApiError::not_found("this registry runs no development issuer"))
}

#[cfg(test)]
mod tests;
