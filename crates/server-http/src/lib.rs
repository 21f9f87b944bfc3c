//! The declarative server: a team writes a tools file (`spec.rs`) instead of code, each tool one
//! call of an HTTP API, and this server serves them with everything the SDK gives a server built
//! by hand (the gateway's identity assertion verified, the manifest's policies enforced again,
//! telemetry). The caller is passed on to the API as `X-Forwarded-User`/`-Groups`, with the
//! API's own bearer token when the file names one.

mod openapi;
pub mod spec;

use std::{sync::Arc, time::Duration};

use rmcp::{
    ServerHandler,
    handler::server::{
        router::tool::{ToolRoute, ToolRouter},
        tool::ToolCallContext,
    },
    model::{CallToolResult, ContentBlock, ServerConfig, Tool, ToolAnnotations},
    tool_handler,
};
use serde_json::{Map, Value};
use server_sdk::Caller;
pub use spec::Spec;
use spec::{Location, ToolSpec};

/// The most bytes of an API's answer read.
const MAX_RESPONSE_BYTES: usize = 8 << 20;

/// The API behind the tools.
pub struct Api {
    spec: Spec,
    base_url: String,
    bearer: Option<String>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("base_url", &self.base_url)
            .field("tools", &self.spec.tools.len())
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API of `spec`, at `base_url` (else the file's); its bearer token is read from the
    /// environment variable the file names.
    pub fn new(spec: Spec, base_url: Option<String>) -> anyhow::Result<Api> {
        let base_url = base_url.or_else(|| spec.base_url.clone()).ok_or_else(|| {
            anyhow::anyhow!("say where the API is: base_url in the tools file or --base-url")
        })?;
        reqwest::Url::parse(&base_url)
            .map_err(|e| anyhow::anyhow!("the base URL {base_url:?} is not a URL: {e}"))?;
        let bearer = match &spec.auth.bearer_env {
            Some(var) => Some(std::env::var(var).map_err(|_| {
                anyhow::anyhow!(
                    "the tools file takes the API's token from ${var}, which is not set"
                )
            })?),
            None => None,
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(spec.timeout_secs.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Api {
            spec,
            base_url: base_url.trim_end_matches('/').to_owned(),
            bearer,
            http,
        })
    }

    /// Makes the call `name` stands for with `arguments`, as `caller`.
    async fn call(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        caller: Option<Caller>,
    ) -> CallToolResult {
        let Some(tool) = self.spec.tools.get(name) else {
            return failure(format!("there is no tool {name}"));
        };
        match self.request(tool, &arguments, caller.as_ref()) {
            Ok(request) => self.answer(name, tool, request).await,
            Err(message) => failure(message),
        }
    }

    fn request(
        &self,
        tool: &ToolSpec,
        arguments: &Map<String, Value>,
        caller: Option<&Caller>,
    ) -> Result<reqwest::RequestBuilder, String> {
        if let Some(unknown) = arguments.keys().find(|k| !tool.arguments.contains_key(*k)) {
            return Err(format!("unknown argument {unknown:?}"));
        }
        let mut path = tool.path.clone();
        let mut query: Vec<(String, String)> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut body = Map::new();
        for (name, argument) in &tool.arguments {
            let value = arguments.get(name).or(argument.default.as_ref());
            let Some(value) = value.filter(|v| !v.is_null()) else {
                if argument.required {
                    return Err(format!("the argument {name:?} is required"));
                }
                continue;
            };
            check_type(name, &argument.kind, value)?;
            let wire = argument.name.clone().unwrap_or_else(|| name.clone());
            match argument.location(&tool.method) {
                Location::Path => {
                    path = path.replace(&format!("{{{name}}}"), &encode_segment(&plain(value)));
                }
                Location::Query => match value {
                    Value::Array(items) => {
                        query.extend(items.iter().map(|item| (wire.clone(), plain(item))))
                    }
                    _ => query.push((wire, plain(value))),
                },
                Location::Header => headers.push((wire, plain(value))),
                Location::Body => {
                    body.insert(wire, value.clone());
                }
            }
        }
        let method = reqwest::Method::from_bytes(tool.method.as_bytes())
            .map_err(|_| format!("{:?} is not an HTTP method", tool.method))?;
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .header(reqwest::header::ACCEPT, "application/json");
        if !query.is_empty() {
            request = request.query(&query);
        }
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if !body.is_empty() {
            request = request.json(&body);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if self.spec.auth.forward_identity
            && let Some(caller) = caller
        {
            request = request
                .header("x-forwarded-user", &caller.user)
                .header("x-forwarded-groups", caller.groups.join(","));
        }
        Ok(request)
    }

    async fn answer(
        &self,
        name: &str,
        tool: &ToolSpec,
        request: reqwest::RequestBuilder,
    ) -> CallToolResult {
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return failure(format!(
                    "the API did not answer within {} s",
                    self.spec.timeout_secs
                ));
            }
            Err(e) => {
                return failure(format!("the API could not be reached: {}", e.without_url()));
            }
        };
        let status = response.status();
        let bytes = match read_limited(response).await {
            Ok(b) => b,
            Err(e) => return failure(e),
        };
        let text = String::from_utf8_lossy(&bytes);
        if !status.is_success() {
            return failure(format!(
                "the API answered {status}: {}",
                cut(text.trim(), 1000)
            ));
        }
        let shaped = match serde_json::from_slice::<Value>(&bytes) {
            Ok(json) => {
                let (value, note) = spec::shape(json, &tool.response);
                let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
                if text.len() > tool.response.max_bytes {
                    text = format!(
                        "{}\n… (cut at {} bytes)",
                        cut(&text, tool.response.max_bytes),
                        tool.response.max_bytes
                    );
                }
                match note {
                    Some(note) => format!("{text}\n({note})"),
                    None => text,
                }
            }
            Err(_) if bytes.is_empty() => format!("{name} done ({status})"),
            Err(_) => cut(&text, tool.response.max_bytes),
        };
        CallToolResult::success(vec![ContentBlock::text(shaped)])
    }
}

fn failure(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("the API's answer broke off: {}", e.without_url()))?
    {
        if out.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(format!(
                "the API's answer is larger than {} MiB",
                MAX_RESPONSE_BYTES >> 20
            ));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// At most `max` bytes of `text`, cut at a character boundary.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A value as it goes into a path, query or header: strings bare, everything else as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn check_type(name: &str, kind: &str, value: &Value) -> Result<(), String> {
    let ok = match kind {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("the argument {name:?} must be of type {kind}"))
    }
}

/// The MCP definitions of the file's tools: input schemas from their arguments, read-only and
/// destructive hints from their methods.
pub fn definitions(spec: &Spec) -> Vec<Tool> {
    spec.tools
        .iter()
        .map(|(name, tool)| {
            let schema = match tool.input_schema() {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            let read_only = tool.read_only.unwrap_or(tool.method == "GET");
            let destructive = tool.destructive.unwrap_or(tool.method == "DELETE");
            let mut definition =
                Tool::new(name.clone(), tool.description.clone(), Arc::new(schema));
            definition.title = tool.title.clone();
            definition.annotate(
                ToolAnnotations::new()
                    .read_only(read_only)
                    .destructive(destructive && !read_only),
            )
        })
        .collect()
}

/// The server: the tools of one tools file.
#[derive(Clone)]
pub struct HttpServer {
    api: Arc<Api>,
    info: ServerConfig,
    tool_router: ToolRouter<HttpServer>,
}

impl HttpServer {
    pub fn new(
        api: Arc<Api>,
        info: ServerConfig,
        tool_router: ToolRouter<HttpServer>,
    ) -> HttpServer {
        HttpServer {
            api,
            info,
            tool_router,
        }
    }

    /// One route per tool of the file.
    pub fn tools(api: &Api) -> ToolRouter<HttpServer> {
        let mut router = ToolRouter::new();
        for definition in definitions(&api.spec) {
            router.add_route(ToolRoute::new_dyn(
                definition,
                |context: ToolCallContext<'_, HttpServer>| {
                    let name = context.name.to_string();
                    let arguments = context.arguments.clone().unwrap_or_default();
                    let caller = server_sdk::caller_of(&context.request_context);
                    let api = context.service.api.clone();
                    Box::pin(async move { Ok(api.call(&name, arguments, caller).await.into()) })
                },
            ));
        }
        router
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for HttpServer {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(encode_segment("a b/c?d"), "a%20b%2Fc%3Fd");
        assert_eq!(encode_segment("inv-1.2_~"), "inv-1.2_~");
    }

    #[test]
    fn arguments_go_where_the_file_says_and_bad_ones_are_refused() {
        let spec = Spec::parse(
            r#"
base_url = "http://api.internal/v1"
[tools.find]
description = "Find"
path = "/items/{id}"
[tools.find.arguments.id]
in = "path"
required = true
[tools.find.arguments.limit]
type = "integer"
"#,
        )
        .unwrap();
        let api = Api::new(spec, None).unwrap();
        let tool = &api.spec.tools["find"];
        let args = |v: Value| v.as_object().unwrap().clone();
        let request = api
            .request(
                tool,
                &args(serde_json::json!({"id": "a/b", "limit": 5})),
                None,
            )
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(
            request.url().as_str(),
            "http://api.internal/v1/items/a%2Fb?limit=5"
        );
        assert_eq!(
            api.request(tool, &args(serde_json::json!({"limit": 5})), None)
                .err()
                .unwrap(),
            "the argument \"id\" is required"
        );
        assert_eq!(
            api.request(
                tool,
                &args(serde_json::json!({"id": "x", "limit": "5"})),
                None
            )
            .err()
            .unwrap(),
            "the argument \"limit\" must be of type integer"
        );
        assert_eq!(
            api.request(
                tool,
                &args(serde_json::json!({"id": "x", "drop": true})),
                None
            )
            .err()
            .unwrap(),
            "unknown argument \"drop\""
        );
    }
}
