//! Query latency through the MCP tool path against the engine alone, on the full sample warehouse
//! (1,080,000 rows of daily spend). The tool path is what an agent's call costs once it reaches
//! the server: an rmcp client over loopback HTTP, the SDK's identity and governance layers, the
//! read-only guard, the engine, and the structured plus text result. The baseline, measured in the
//! same run, is `SqlEngine::query` with the same statement. Run with `cargo bench -p server-sql`.

use std::{sync::Arc, time::Instant};

use rmcp::{ServiceExt, model::CallToolRequestParams, transport::StreamableHttpClientTransport};
use server_sdk::{Caller, Governance, HttpOptions, IdentityMode};
use server_sql::{Embedded, Limits, Run, SqlEngine, SqlServer, sample};

const QUERIES: &[(&str, &str)] = &[
    (
        "point lookup",
        "SELECT * FROM ads.campaigns WHERE campaign_id = 42",
    ),
    (
        "aggregate over 1.08M rows",
        "SELECT c.region, round(sum(s.spend_usd), 2) AS spend FROM ads.daily_spend s \
         JOIN ads.campaigns c ON c.campaign_id = s.campaign_id GROUP BY c.region ORDER BY spend DESC",
    ),
];

fn per_call(started: Instant, n: u32) -> f64 {
    started.elapsed().as_secs_f64() * 1000.0 / f64::from(n)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("warehouse");
    sample::ensure(&root, sample::Scale::FULL)?;
    let engine: Arc<dyn SqlEngine> = Arc::new(Embedded::open(&root, "warehouse").await?);
    let limits = Limits::default();

    let manifest =
        catalog::Manifest::parse(server_sql::MANIFEST).map_err(|p| anyhow::anyhow!("{p:?}"))?;
    // The bundled table rules are enforced on every call, as in production.
    let governance = Governance::new(manifest.clone(), Caller::local())
        .and_then(|g| g.with_policies(server_sql::POLICIES, &SqlServer::tools().list_all(), "dev"))
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let app = server_sql::http_router(
        engine.clone(),
        limits.clone(),
        governance,
        HttpOptions {
            identity: IdentityMode::Open(None),
            allowed_hosts: Vec::new(),
            ready: None,
        },
    )
    .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/mcp", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = ().serve(StreamableHttpClientTransport::from_uri(url)).await?;

    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "query", "engine (ms)", "tool (ms)", "ratio"
    );
    for (name, sql) in QUERIES {
        let run = Run {
            user: "bench".into(),
            limits: limits.clone(),
        };
        let n = if name.starts_with("point") { 200 } else { 20 };
        // Warm both paths (file metadata, plans, connections).
        for _ in 0..3 {
            engine.query(sql, &run).await?;
        }
        let call = || {
            CallToolRequestParams::new("run_query").with_arguments(
                serde_json::json!({"sql": sql})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
        };
        for _ in 0..3 {
            client.call_tool(call()).await?;
        }
        let started = Instant::now();
        for _ in 0..n {
            engine.query(sql, &run).await?;
        }
        let engine_ms = per_call(started, n);
        let started = Instant::now();
        for _ in 0..n {
            let result = client.call_tool(call()).await?;
            assert_ne!(result.is_error, Some(true));
        }
        let tool_ms = per_call(started, n);
        println!(
            "{name:<28} {engine_ms:>14.3} {tool_ms:>14.3} {:>7.2}x",
            tool_ms / engine_ms
        );
    }
    client.cancel().await?;
    Ok(())
}
