//! The SDK as a team uses it: a small server served over HTTP behind the identity middleware,
//! called by an rmcp client that presents gateway assertions. Checks verified identity in tools,
//! manifest policies and the in-tool guard, and the telemetry endpoint.

use std::{collections::HashMap, sync::Arc};

use catalog::Manifest;
use identity::{
    ASSERTION_HEADER, Claims, FORWARDED_USER_HEADER, KeySource, SigningKey, TrustedIssuer,
    Verifier, jwks_document,
};
use rmcp::{
    ErrorData, RoleServer, ServerHandler, ServiceExt,
    handler::server::router::tool::ToolRouter,
    model::{CallToolRequestParams, ProgressNotificationParam, ServerConfig},
    service::{RequestContext, ServiceError},
    tool, tool_handler, tool_router,
    transport::{
        StreamableHttpClientTransport, streamable_http_client::StreamableHttpClientTransportConfig,
    },
};
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode, caller_of};

const MANIFEST: &str = r##"
[server]
name = "ledger"
description = "Balances and revenue"
owner_team = "finance-eng"
support_channel = "#ledger"

[policies.revenue-readers]
groups = ["finance"]

[policies.auditors]
groups = ["audit"]

[tools.balance]
minutes_saved = 1.0

[tools.revenue]
minutes_saved = 5.0
sensitivity = "high"
policy = "revenue-readers"

[tools.audit_trail]
minutes_saved = 2.0

[tools.progress]
minutes_saved = 1.0
"##;

#[derive(Clone)]
struct Ledger {
    governance: Governance,
    tool_router: ToolRouter<Ledger>,
}

#[tool_router]
impl Ledger {
    #[tool(description = "Who am I and what is my balance")]
    async fn balance(&self, ctx: RequestContext<RoleServer>) -> String {
        let caller = caller_of(&ctx).expect("the middleware sets the caller");
        format!(
            "balance for {} in [{}]",
            caller.user,
            caller.groups.join(",")
        )
    }

    #[tool(description = "Revenue, guarded by the manifest's revenue-readers policy")]
    async fn revenue(&self) -> String {
        "42".into()
    }

    #[tool(description = "Guarded inside the tool with Governance::authorize")]
    async fn audit_trail(&self, ctx: RequestContext<RoleServer>) -> Result<String, ErrorData> {
        let caller = self.governance.caller(&ctx);
        self.governance.authorize(&caller, "auditors")?;
        Ok("trail".into())
    }

    #[tool(description = "Reports progress once when asked to, then answers")]
    async fn progress(&self, ctx: RequestContext<RoleServer>) -> String {
        if let Some(token) = ctx.meta.get_progress_token() {
            let _ = ctx
                .peer
                .notify_progress(ProgressNotificationParam::new(token, 50.0))
                .await;
        }
        "done".into()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Ledger {
    fn get_info(&self) -> ServerConfig {
        server_sdk::server_info(self.governance.manifest())
    }
}

struct Served {
    url: String,
    key: Arc<SigningKey>,
}

impl Served {
    /// The gateway's assertion of `user` in `groups`, for this server.
    fn assertion(&self, user: &str, groups: &[&str]) -> String {
        let groups = groups.iter().map(|g| g.to_string()).collect();
        self.key
            .sign(&Claims::new("gw", user, "ledger", groups, 60))
            .unwrap()
    }
}

async fn serve() -> Served {
    let key = Arc::new(SigningKey::generate().unwrap());
    let verifier = Verifier::new(
        "ledger",
        vec![TrustedIssuer::new(
            "gw",
            KeySource::Static(jwks_document(&[&key])),
        )],
    )
    .unwrap();
    let governance =
        Governance::new(Manifest::parse(MANIFEST).unwrap(), Caller::anonymous()).unwrap();
    let router = governance.govern(Ledger::tool_router()).unwrap();
    let g = governance.clone();
    let app = server_sdk::http_router(
        move || Ledger {
            governance: g.clone(),
            tool_router: router.clone(),
        },
        governance,
        HttpOptions {
            identity: IdentityMode::Gateway(verifier),
            allowed_hosts: Vec::new(),
            ready: None,
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served { url, key }
}

async fn call_as(
    served: &Served,
    user: &str,
    groups: &[&str],
    tool: &str,
) -> Result<String, ErrorData> {
    let assertion = served.assertion(user, groups);
    let headers = HashMap::from([
        (
            ASSERTION_HEADER.parse().unwrap(),
            assertion.parse().unwrap(),
        ),
        (
            FORWARDED_USER_HEADER.parse().unwrap(),
            user.parse().unwrap(),
        ),
    ]);
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(format!("{}/mcp", served.url))
            .custom_headers(headers),
    );
    let client = ().serve(transport).await.unwrap();
    let result = client
        .call_tool(CallToolRequestParams::new(tool.to_owned()))
        .await;
    client.cancel().await.unwrap();
    match result {
        Ok(r) => Ok(r.content[0].as_text().unwrap().text.clone()),
        Err(ServiceError::McpError(e)) => Err(e),
        Err(e) => panic!("transport failure: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tools_see_the_verified_caller_and_policies_apply() {
    let served = serve().await;
    assert_eq!(
        call_as(&served, "bob", &["eng"], "balance").await.unwrap(),
        "balance for bob in [eng]"
    );

    let denied = call_as(&served, "bob", &["eng"], "revenue")
        .await
        .unwrap_err();
    assert_eq!(denied.code, server_sdk::DENIED_CODE);
    assert_eq!(
        denied.message,
        "denied by policy ledger/revenue-readers: policy revenue-readers on tool revenue requires one of groups [finance]"
    );
    assert_eq!(
        call_as(&served, "fin", &["finance"], "revenue")
            .await
            .unwrap(),
        "42"
    );

    let guarded = call_as(&served, "fin", &["finance"], "audit_trail")
        .await
        .unwrap_err();
    assert!(
        guarded
            .message
            .starts_with("denied by policy ledger/auditors"),
        "{}",
        guarded.message
    );
    assert_eq!(
        call_as(&served, "ann", &["audit"], "audit_trail")
            .await
            .unwrap(),
        "trail"
    );

    let metrics = reqwest::get(format!("{}/metrics", served.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"switchboard_tool_invocations_total{server="ledger",tool="revenue",outcome="denied"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"switchboard_tool_invocations_total{server="ledger",tool="revenue",outcome="ok"} 1"#
    ));
    assert!(
        metrics.contains(r#"switchboard_tool_errors_total{server="ledger",tool="audit_trail"} 1"#),
        "{metrics}"
    );
    assert_eq!(
        reqwest::get(format!("{}/healthz", served.url))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{}/readyz", served.url))
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn the_router_and_the_manifest_must_agree() {
    let manifest =
        Manifest::parse(&MANIFEST.replace("[tools.audit_trail]", "[tools.ghost]")).unwrap();
    let governance = Governance::new(manifest, Caller::anonymous()).unwrap();
    let problems: Vec<String> = governance
        .govern(Ledger::tool_router())
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        [
            "tools.audit_trail: the server serves this tool but the manifest does not describe it (minutes_saved, sensitivity)",
            "tools.ghost: the manifest describes this tool but the server does not serve it",
        ]
    );
}

/// A 2026-07-28 call, raw, as bob of eng: the answer's content type and its JSON-RPC messages.
async fn post_modern(
    served: &Served,
    tool: &str,
    mut meta: serde_json::Value,
) -> (String, Vec<serde_json::Value>) {
    let assertion = served.assertion("bob", &["eng"]);
    meta["io.modelcontextprotocol/protocolVersion"] = "2026-07-28".into();
    meta["io.modelcontextprotocol/clientCapabilities"] = serde_json::json!({});
    let response = reqwest::Client::new()
        .post(format!("{}/mcp", served.url))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", tool)
        .header(ASSERTION_HEADER, assertion)
        .header(FORWARDED_USER_HEADER, "bob")
        .json(
            &serde_json::json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                                  "params": {"name": tool, "arguments": {}, "_meta": meta}}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    let messages = if content_type.starts_with("text/event-stream") {
        body.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter(|d| !d.trim().is_empty())
            .map(|d| serde_json::from_str(d.trim()).unwrap())
            .collect()
    } else {
        vec![serde_json::from_str(&body).unwrap()]
    };
    (content_type, messages)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_answer_alone_is_one_json_body_and_a_streamed_one_an_event_stream() {
    let served = serve().await;
    // Nothing before the answer: one JSON body.
    let (content_type, messages) = post_modern(&served, "balance", serde_json::json!({})).await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["id"], 3);
    assert_eq!(
        messages[0]["result"]["content"][0]["text"],
        "balance for bob in [eng]"
    );
    // Progress first: an event stream carrying the progress, then the answer.
    let (content_type, messages) = post_modern(
        &served,
        "progress",
        serde_json::json!({"progressToken": "p-1"}),
    )
    .await;
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(messages[0]["method"], "notifications/progress");
    assert_eq!(messages[0]["params"]["progressToken"], "p-1");
    assert_eq!(messages[1]["id"], 3);
    assert_eq!(messages[1]["result"]["content"][0]["text"], "done");
}
