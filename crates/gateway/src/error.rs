//! The gateway's one mapping from refusals and failures to responses on an MCP route: an HTTP
//! status and a JSON-RPC error body a client can show.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::Value;

/// Code for calls refused by policy; the same code the server SDK uses.
pub(crate) const DENIED: i64 = -32003;
/// A caller over its per-user rate limit (the answer says when to retry).
pub(crate) const RATE_LIMITED: i64 = -32029;
pub(crate) const UNAUTHENTICATED: i64 = -32001;
pub(crate) const UPSTREAM: i64 = -32002;
pub(crate) const PARSE_ERROR: i64 = -32700;
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// MCP 2026-07-28: a standard header disagrees with the body.
pub(crate) const HEADER_MISMATCH: i64 = -32020;

pub(crate) fn jsonrpc_error(id: &Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = serde_json::json!({ "code": code, "message": message });
    if let Some(data) = data {
        error["data"] = data;
    }
    serde_json::json!({ "jsonrpc": "2.0", "id": id, "error": error })
}

pub(crate) fn respond(status: StatusCode, id: &Value, code: i64, message: &str) -> Response {
    (status, Json(jsonrpc_error(id, code, message, None))).into_response()
}

/// A bearer challenge (RFC 6750) that points clients at the route's protected-resource
/// metadata (RFC 9728), so an MCP client can find the authorization server.
pub(crate) struct Challenge<'a> {
    pub(crate) resource_metadata: &'a str,
}

impl<'a> Challenge<'a> {
    /// The challenge of a route whose protected-resource metadata is at `resource_metadata`.
    pub(crate) fn at(resource_metadata: &'a str) -> Challenge<'a> {
        Challenge { resource_metadata }
    }

    /// 401: no token (no error code, per RFC 6750), or an invalid one.
    pub(crate) fn unauthorized(&self, invalid: Option<&str>) -> Response {
        let reason = invalid.unwrap_or("a bearer token is required");
        let mut response = respond(
            StatusCode::UNAUTHORIZED,
            &Value::Null,
            UNAUTHENTICATED,
            &format!("unauthenticated: {reason}"),
        );
        let mut challenge = format!(
            "Bearer realm=\"switchboard\", resource_metadata=\"{}\"",
            self.resource_metadata
        );
        if let Some(reason) = invalid {
            challenge.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{}\"",
                quoted(reason)
            ));
        }
        set_challenge(&mut response, &challenge);
        response
    }

    /// 403: the token lacks scopes the route requires (step-up authorization).
    pub(crate) fn insufficient_scope(&self, required: &[String]) -> Response {
        let scope = required.join(" ");
        let mut response = respond(
            StatusCode::FORBIDDEN,
            &Value::Null,
            UNAUTHENTICATED,
            &format!("insufficient scope: this server requires the scopes {scope}"),
        );
        let challenge = format!(
            "Bearer realm=\"switchboard\", error=\"insufficient_scope\", scope=\"{scope}\", resource_metadata=\"{}\"",
            self.resource_metadata
        );
        set_challenge(&mut response, &challenge);
        response
    }
}

fn quoted(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

fn set_challenge(response: &mut Response, challenge: &str) {
    let value = HeaderValue::from_str(challenge)
        .unwrap_or_else(|_| HeaderValue::from_static("Bearer realm=\"switchboard\""));
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
}
