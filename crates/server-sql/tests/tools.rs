//! The SQL server's tools over MCP, with no gateway in front (the server's own guarantees): the
//! bundled table rules hold for a caller outside the finance group, and `run_write` changes
//! nothing unless it runs as an approved proposal; asked for a preview, it says what it would
//! change and changes nothing either.

use std::sync::Arc;

use rmcp::{
    ServiceExt,
    model::{CallToolRequestParams, MetaObject, RequestMetaObject},
    transport::StreamableHttpClientTransport,
};
use serde_json::{Value, json};
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
use server_sql::{
    Embedded, Limits, SqlEngine, SqlServer,
    sample::{self, Scale},
};

async fn serve(root: &std::path::Path) -> String {
    let engine: Arc<dyn SqlEngine> = Arc::new(Embedded::open(root, "warehouse").await.unwrap());
    let manifest = catalog::Manifest::parse(server_sql::MANIFEST).unwrap();
    // Calls without identity run as `anonymous`, who is in no group.
    let governance = Governance::new(manifest.clone(), Caller::anonymous())
        .and_then(|g| g.with_policies(server_sql::POLICIES, &SqlServer::tools().list_all(), "dev"))
        .unwrap();
    let app = server_sql::http_router(
        engine,
        Limits::default(),
        governance,
        HttpOptions {
            identity: IdentityMode::Open(None),
            allowed_hosts: Vec::new(),
            ready: None,
        },
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_need_an_approved_proposal_and_table_rules_hold_at_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("warehouse");
    sample::ensure(&root, Scale::SMALL).unwrap();
    let url = serve(&root).await;
    let agent = ().serve(StreamableHttpClientTransport::from_uri(url)).await.unwrap();
    let call = |tool: &'static str, args: Value, preview: bool| {
        let agent = &agent;
        async move {
            let mut params =
                CallToolRequestParams::new(tool).with_arguments(args.as_object().cloned().unwrap());
            if preview {
                let mut meta = serde_json::Map::new();
                meta.insert("dev.switchboard/preview".into(), json!(true));
                params.meta = Some(RequestMetaObject(MetaObject(meta)));
            }
            agent.call_tool(params).await
        }
    };
    let create = json!({"sql": "CREATE TABLE ads.copy AS SELECT * FROM ads.campaigns"});

    // Not approved: refused, nothing written.
    let refused = call("run_write", create.clone(), false).await.unwrap();
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).contains("runs only as an approved proposal"),
        "{}",
        text(&refused)
    );
    assert!(!root.join("ads/copy.parquet").exists());

    // A preview says what would change (the client cannot confirm, so it is not asked).
    let preview = call("run_write", create, true).await.unwrap();
    let value = serde_json::to_value(&preview).unwrap();
    let details = &value["_meta"]["dev.switchboard/preview"]["details"];
    assert_eq!(details["operation"], "create", "{value}");
    assert_eq!(details["estimated_rows"], Scale::SMALL.campaigns, "{value}");
    assert_eq!(details["reads"], json!(["ads.campaigns"]));
    assert!(!root.join("ads/copy.parquet").exists());

    // The table rules hold here too, for reads and writes.
    for (tool, args) in [
        ("run_query", json!({"sql": "select * from FINANCE.ledger"})),
        (
            "run_write",
            json!({"sql": "INSERT INTO finance.ledger SELECT * FROM finance.ledger"}),
        ),
        ("describe_table", json!({"table": "finance.ledger"})),
    ] {
        let denied = call(tool, args, false).await.unwrap_err().to_string();
        assert!(denied.contains("sql/finance-tables"), "{tool}: {denied}");
    }
    let open = call(
        "run_query",
        json!({"sql": "SELECT count(*) FROM ads.campaigns"}),
        false,
    )
    .await
    .unwrap();
    assert_ne!(open.is_error, Some(true), "{}", text(&open));
    agent.cancel().await.unwrap();
}
