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
    let result = message.get("result");
    Answer {
        // `"error": null` beside a result is no error (some servers send both).
        error: message
            .get("error")
            .filter(|e| !e.is_null())
            .map(|e| e.get("message").and_then(Value::as_str)),
        result_type: result
            .and_then(|r| r.get("resultType"))
            .and_then(Value::as_str),
        is_error: result
            .and_then(|r| r.get("isError"))
            .and_then(Value::as_bool),
    }
    .outcome()
}

/// The facts of a `tools/call` answer its outcome is read from.
struct Answer<'a> {
    /// An error, with its message if it has one.
    error: Option<Option<&'a str>>,
    result_type: Option<&'a str>,
    is_error: Option<bool>,
}

impl Answer<'_> {
    fn outcome(&self) -> (Outcome, bool, Option<String>) {
        if let Some(message) = self.error {
            return (
                Outcome::Error,
                true,
                Some(message.unwrap_or("JSON-RPC error").to_owned()),
            );
        }
        if self.result_type == Some("input_required") {
            return (Outcome::InputRequired, false, None);
        }
        if self.is_error == Some(true) {
            return (Outcome::ToolError, true, None);
        }
        (Outcome::Ok, false, None)
    }
}

/// A JSON-RPC message read only as far as auditing a `tools/call` answer needs: its id, whether
/// it is a result or an error, and the few fields of either that decide the outcome. Reading it
/// builds nothing of the rest (a search's passages, a query's rows), so an answer that nothing
/// rewrites passes on as the server wrote it. A message of another shape does not skim (read it
/// whole).
#[derive(Default)]
pub(crate) struct Skim {
    id: Option<Value>,
    result: Option<SkimResult>,
    error: Option<SkimError>,
}

/// The fields of a result that decide a call's outcome.
#[derive(Default)]
struct SkimResult {
    result_type: Option<String>,
    is_error: Option<bool>,
}

/// The fields of an error the gateway reads.
#[derive(Default)]
struct SkimError {
    code: Option<i64>,
    message: Option<String>,
}

/// A skim and its parts are read from an object only, field by field (serde's derive
/// would take a list for a struct too, which a whole reading does not), ignoring the rest
/// without building it.
macro_rules! skim_object {
    ($type:ident, $what:literal, $($key:literal => $field:ident),+) => {
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Fields;
                impl<'de> serde::de::Visitor<'de> for Fields {
                    type Value = $type;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$type, A::Error> {
                        let mut value = $type::default();
                        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                            match key.as_ref() {
                                $($key => value.$field = map.next_value()?,)+
                                _ => {
                                    map.next_value::<serde::de::IgnoredAny>()?;
                                }
                            }
                        }
                        Ok(value)
                    }
                }
                deserializer.deserialize_map(Fields)
            }
        }
    };
}

skim_object!(Skim, "a JSON-RPC message", "id" => id, "result" => result, "error" => error);
skim_object!(SkimResult, "a result object", "resultType" => result_type, "isError" => is_error);
skim_object!(SkimError, "an error object", "code" => code, "message" => message);

impl Skim {
    /// Whether this is the answer to the request `id` (as [`is_response_to`] says).
    pub(crate) fn answers(&self, id: &Value) -> bool {
        self.id.as_ref() == Some(id) && self.is_answer()
    }

    /// Whether it is a result or an error at all.
    pub(crate) fn is_answer(&self) -> bool {
        self.result.is_some() || self.error.is_some()
    }

    /// The error code, if the message is an error.
    pub(crate) fn error_code(&self) -> Option<i64> {
        self.error.as_ref().and_then(|e| e.code)
    }

    /// What the answer says happened, as [`call_outcome`] reads it.
    pub(crate) fn outcome(&self) -> (Outcome, bool, Option<String>) {
        Answer {
            error: self.error.as_ref().map(|e| e.message.as_deref()),
            result_type: self.result.as_ref().and_then(|r| r.result_type.as_deref()),
            is_error: self.result.as_ref().and_then(|r| r.is_error),
        }
        .outcome()
    }
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

    /// A skimmed answer is read exactly as the whole one is, wherever it skims at all.
    #[test]
    fn a_skimmed_answer_has_the_outcome_of_the_whole_one() {
        let answers = [
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"x"}],"structuredContent":{"rows":[[1,2]]}}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[]}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"isError":false}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"resultType":"input_required","inputRequests":{}}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"resultType":"complete"}}),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"bad"}}),
            json!({"jsonrpc":"2.0","id":1,"error":{"code":-32603}}),
            json!({"jsonrpc":"2.0","id":1,"result":{"content":[]},"error":null}),
            json!({"jsonrpc":"2.0","id":"a","result":{}}),
        ];
        for answer in answers {
            let skim: Skim = serde_json::from_value(answer.clone()).unwrap();
            assert_eq!(skim.outcome(), call_outcome(&answer), "{answer}");
            assert_eq!(
                skim.answers(&answer["id"]),
                is_response_to(&answer, &answer["id"]),
                "{answer}"
            );
            assert!(!skim.answers(&json!(99)), "{answer}");
        }
        // Shapes that do not skim are read whole.
        for odd in [
            json!({"id":1,"result":{"isError":"yes"}}),
            json!({"id":1,"error":"broken"}),
            json!({"id":1,"result":[]}),
            json!([1]),
        ] {
            assert!(
                serde_json::from_value::<Skim>(odd.clone()).is_err(),
                "{odd}"
            );
        }
        let progress: Skim = serde_json::from_value(
            json!({"jsonrpc":"2.0","method":"notifications/progress","params":{}}),
        )
        .unwrap();
        assert!(!progress.is_answer());
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
