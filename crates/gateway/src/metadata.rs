//! OAuth 2.0 protected-resource metadata (RFC 9728) for the gateway and for each server route, so
//! that a standard MCP client that meets a 401 can find the authorization server and the scopes to
//! ask for. The metadata is public.

use std::sync::Arc;

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::Gateway;

impl Gateway {
    /// The canonical resource URI of a server's MCP route.
    pub(crate) fn resource(&self, server: &str) -> String {
        format!("{}/servers/{server}/mcp", self.public_url)
    }

    /// Where the metadata of a server's route is published.
    pub(crate) fn resource_metadata_url(&self, server: &str) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource/servers/{server}/mcp",
            self.public_url
        )
    }

    fn metadata(&self, resource: String, name: Option<&str>) -> Value {
        // Only issuers a client can reach are authorization servers (not `urn:` ones).
        let authorization_servers: Vec<&str> = self
            .verifier
            .issuers()
            .filter(|i| i.starts_with("https://") || i.starts_with("http://"))
            .collect();
        let mut doc = json!({
            "resource": resource,
            "authorization_servers": authorization_servers,
            "bearer_methods_supported": ["header"],
            "scopes_supported": self.required_scopes,
        });
        if let Some(name) = name {
            doc["resource_name"] = Value::String(name.to_owned());
        }
        doc
    }
}

pub(crate) async fn gateway(State(gw): State<Arc<Gateway>>) -> Json<Value> {
    Json(gw.metadata(gw.public_url.clone(), Some("Switchboard gateway")))
}

pub(crate) async fn server(State(gw): State<Arc<Gateway>>, Path(name): Path<String>) -> Response {
    match gw.catalog.server(&name).await {
        Some(server) => {
            let title = server.title.clone().unwrap_or_else(|| server.name.clone());
            Json(gw.metadata(gw.resource(&name), Some(&title))).into_response()
        }
        None => (
            StatusCode::NOT_FOUND,
            format!("no server named {name} is registered"),
        )
            .into_response(),
    }
}
