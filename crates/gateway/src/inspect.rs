//! The few JSON-RPC facts the gateway reads or rewrites: which tool a call names, the digest of its
//! arguments, the outcome of a call result, and `tools/list` filtered to what the caller may call.

use registry_api::Outcome;
use serde_json::Value;

/// Hex SHA-256 of the canonical JSON (object keys sorted) of `arguments`.
pub(crate) fn argument_digest(arguments: Option<&Value>) -> String {
    catalog::json_digest(arguments.unwrap_or(&Value::Null))
}

/// What a JSON-RPC response to `tools/call` says happened: outcome, isError, and a short detail.
pub(crate) fn call_outcome(message: &Value) -> (Outcome, bool, Option<String>) {
    if let Some(error) = message.get("error") {
        let detail = error
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("JSON-RPC error")
            .to_owned();
        return (Outcome::Error, true, Some(detail));
    }
    let result = message.get("result");
    if result
        .and_then(|r| r.get("resultType"))
        .and_then(Value::as_str)
        == Some("input_required")
    {
        return (Outcome::InputRequired, false, None);
    }
    if result
        .and_then(|r| r.get("isError"))
        .and_then(Value::as_bool)
        == Some(true)
    {
        return (Outcome::ToolError, true, None);
    }
    (Outcome::Ok, false, None)
}

/// Replaces the listed tools with what `filter` leaves of them. The list now depends on the
/// caller, so any caching hint becomes `private` (it must never be shared across callers).
pub(crate) fn filter_tools_list(
    message: &mut Value,
    filter: impl FnOnce(Vec<Value>) -> Vec<Value>,
) {
    let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(tools) = result.get_mut("tools").and_then(Value::as_array_mut) {
        *tools = filter(std::mem::take(tools));
    }
    if result.contains_key("cacheScope") {
        result.insert("cacheScope".into(), Value::String("private".into()));
    }
}

/// MCP 2026-07-28 requires `Mcp-Method` (and `Mcp-Name` for calls, reads and prompt gets) to
/// match the body. Requests that declare an older protocol version carry no such headers.
pub(crate) fn check_standard_headers(
    headers: &http::HeaderMap,
    message: &Value,
) -> Result<(), String> {
    let version = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if version < "2026-07-28" {
        return Ok(());
    }
    let Some(method) = message.get("method").and_then(Value::as_str) else {
        return Ok(()); // a response to a server request
    };
    let header = |name: &str| {
        headers
            .get(name)
            .map(|v| v.to_str().ok().and_then(decode_header_value))
    };
    match header("mcp-method") {
        Some(Some(value)) if value == method => {}
        Some(Some(value)) => {
            return Err(format!(
                "the Mcp-Method header ({value}) does not match the body's method ({method})"
            ));
        }
        Some(None) => return Err("the Mcp-Method header is not valid".into()),
        None => return Err("the Mcp-Method header is required".into()),
    }
    let params = message.get("params");
    let name = match method {
        "tools/call" | "prompts/get" => params.and_then(|p| p.get("name")),
        "resources/read" => params.and_then(|p| p.get("uri")),
        _ => return Ok(()),
    }
    .and_then(Value::as_str)
    .unwrap_or_default();
    match header("mcp-name") {
        Some(Some(value)) if value == name => Ok(()),
        Some(Some(_)) => Err(format!(
            "the Mcp-Name header does not match the body's name ({name})"
        )),
        Some(None) => Err("the Mcp-Name header is not valid".into()),
        None => Err("the Mcp-Name header is required".into()),
    }
}

/// Header values outside ASCII travel as `=?base64?<data>?=`.
fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => {
            use base64::Engine;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_owned()),
    }
}

/// Is `message` the response (result or error) to the request with `id`?
pub(crate) fn is_response_to(message: &Value, id: &Value) -> bool {
    message.get("id") == Some(id)
        && (message.get("result").is_some() || message.get("error").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn digests_ignore_key_order() {
        let a = argument_digest(Some(&json!({"b": 1, "a": [1, {"y": 2, "x": "é"}]})));
        let b = argument_digest(Some(&json!({"a": [1, {"x": "é", "y": 2}], "b": 1})));
        assert_eq!(a, b);
        assert_ne!(a, argument_digest(Some(&json!({"b": 2, "a": []}))));
        assert_eq!(argument_digest(None).len(), 64);
    }

    #[test]
    fn standard_headers_must_match_the_body() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut h = http::HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, v.parse().unwrap());
            }
            h
        };
        let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"héllo"}});
        let version = ("mcp-protocol-version", "2026-07-28");
        let method = ("mcp-method", "tools/call");
        let check = |pairs: &[(&'static str, &str)]| check_standard_headers(&headers(pairs), &call);
        assert!(check(&[("mcp-protocol-version", "2025-11-25")]).is_ok());
        assert!(check(&[version, method, ("mcp-name", "=?base64?aMOpbGxv?=")]).is_ok());
        assert!(
            check(&[version, method, ("mcp-name", "other")])
                .unwrap_err()
                .contains("Mcp-Name")
        );
        assert!(check(&[version, method]).unwrap_err().contains("required"));
        let err = check(&[version, ("mcp-method", "tools/list")]).unwrap_err();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn outcomes() {
        assert_eq!(
            call_outcome(&json!({"id":1,"result":{"content":[]}})).0,
            Outcome::Ok
        );
        assert_eq!(
            call_outcome(&json!({"id":1,"result":{"isError":true}})).0,
            Outcome::ToolError
        );
        assert_eq!(
            call_outcome(&json!({"id":1,"result":{"resultType":"input_required"}})).0,
            Outcome::InputRequired
        );
        let (o, e, d) = call_outcome(&json!({"id":1,"error":{"code":-32602,"message":"bad"}}));
        assert_eq!((o, e, d.as_deref()), (Outcome::Error, true, Some("bad")));
    }

    #[test]
    fn filters_tools_and_privatizes_the_cache_hint() {
        let mut m = json!({"id":1,"result":{"tools":[{"name":"a"},{"name":"b"},{"x":1}],"ttlMs":1000,"cacheScope":"public"}});
        filter_tools_list(&mut m, |tools| {
            tools.into_iter().filter(|t| t["name"] == "b").collect()
        });
        assert_eq!(m["result"]["tools"], json!([{"name":"b"}]));
        assert_eq!(m["result"]["cacheScope"], "private");
        assert!(is_response_to(&m, &json!(1)));
        assert!(!is_response_to(
            &json!({"method":"notifications/progress"}),
            &json!(1)
        ));
    }
}
