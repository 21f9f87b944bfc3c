//! The registry's HTTP surface: builds the axum router; handlers live in `http/api/`.

pub(crate) mod api;
mod auth;
mod error;

use std::sync::Arc;

use axum::{Json, Router, extract::State, routing::get};
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::RegistryState;

pub fn router(state: Arc<RegistryState>) -> Router {
    let store = state.store.clone();
    let (api, document) = api_router().split_for_parts();
    let document = Arc::new(document);
    api.route("/dev-issuer/jwks.json", get(dev_issuer_jwks))
        .route(
            "/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .merge(crate::ui::router())
        .route(
            "/metrics",
            get(|State(state): State<Arc<RegistryState>>| async move {
                crate::metrics::encode(&state).await
            }),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics::count_requests,
        ))
        .with_state(state)
        .merge(service_kit::readiness_routes(move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        }))
}

/// The OpenAPI document of the registry's API, generated from the handlers and wire types.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// Every documented route: registering a handler here is what puts it in the OpenAPI document.
fn api_router() -> OpenApiRouter<Arc<RegistryState>> {
    use api::{access, audit, governance, insights, mcp_registry, proposals, servers};
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(servers::list, servers::register))
        .routes(routes!(servers::get))
        .routes(routes!(servers::tools))
        .routes(routes!(servers::observed_tools))
        .routes(routes!(servers::status, servers::put_status))
        .routes(routes!(governance::server_reviews))
        .routes(routes!(servers::statuses))
        .routes(routes!(servers::gateway_heartbeat))
        .routes(routes!(access::check))
        .routes(routes!(access::discovery))
        .routes(routes!(access::policy_check))
        .routes(routes!(access::who_can))
        .routes(routes!(access::platform_policies))
        .routes(routes!(access::catalog_version))
        .routes(routes!(audit::append, audit::list))
        .routes(routes!(audit::export))
        .routes(routes!(insights::get))
        .routes(routes!(insights::post_feedback))
        .routes(routes!(governance::list_teams))
        .routes(routes!(governance::get_team, governance::put_team))
        .routes(routes!(governance::list_reviews))
        .routes(routes!(governance::get_review))
        .routes(routes!(governance::approve))
        .routes(routes!(governance::reject))
        .routes(routes!(governance::list_changes))
        .routes(routes!(proposals::list, proposals::create))
        .routes(routes!(proposals::get))
        .routes(routes!(proposals::approve))
        .routes(routes!(proposals::reject))
        .routes(routes!(proposals::claim))
        .routes(routes!(proposals::finish))
        .routes(routes!(mcp_registry::list))
        .routes(routes!(mcp_registry::versions))
        .routes(routes!(mcp_registry::version))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Switchboard registry",
        description = "The source of truth for which MCP servers exist, who owns them, whether they are approved for production, who may use them, and the audit of every call.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "servers", description = "Registered servers and their tools"),
        (name = "access", description = "Access answers and discovery for AI clients"),
        (name = "policy", description = "Policy explanations"),
        (name = "reviews", description = "Security, Legal/Privacy and GenAI reviews"),
        (name = "teams", description = "Teams that own servers"),
        (name = "changes", description = "The history of every catalog change"),
        (name = "status", description = "Live status probes"),
        (name = "audit", description = "One record per call through the gateway"),
        (name = "proposals", description = "Calls waiting for a person's approval"),
        (name = "insights", description = "The north-star report (time saved) and feedback on tools"),
        (name = "mcp-registry", description = "The approved catalog in the official MCP Registry API")
    )
)]
struct ApiDoc;

/// Every operation takes a bearer JWT from a trusted issuer.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
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
