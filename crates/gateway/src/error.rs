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

pub(crate) fn unauthorized(reason: &str) -> Response {
    let mut response = respond(
        StatusCode::UNAUTHORIZED,
        &Value::Null,
        UNAUTHENTICATED,
        &format!("unauthenticated: {reason}"),
    );
    let challenge = format!(
        "Bearer realm=\"switchboard\", error=\"invalid_token\", error_description=\"{}\"",
        reason.replace('"', "'")
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    } else {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"switchboard\""),
        );
    }
    response
}
