//! `search_docs` through the gateway with three independent real clients, in both protocol eras.

use std::process::Command;

use rmcp::ServiceExt;
use serde_json::{Value, json};

use crate::harness::{
    Platform, available, call, connect, node_command, node_tools, python, tool_names,
};

async fn rmcp_search(url: &str, token: &str, modern: bool) -> (String, Vec<String>, Value) {
    let client = connect(url, token, modern).await;
    let version = client
        .peer_info()
        .map(|i| i.protocol_version.to_string())
        .unwrap_or_default();
    let tools = tool_names(&client).await;
    let arguments = json!({"query": "spark executor out of memory", "limit": 3});
    let result = call(&client, "search_docs", arguments).await.unwrap();
    assert_eq!(result.is_error, Some(false));
    let structured = result.structured_content.clone().unwrap();
    client.cancel().await.unwrap();
    (version, tools, structured)
}

#[tokio::test(flavor = "multi_thread")]
async fn rmcp_client_searches_through_the_gateway_in_both_eras() {
    let platform = Platform::start();
    for (modern, era) in [(true, "2026-07-28"), (false, "2025-11-25")] {
        let (version, tools, structured) =
            rmcp_search(&platform.mcp_url, &platform.token, modern).await;
        assert_eq!(version, era);
        assert_eq!(tools, ["get_doc", "search_docs"]);
        assert_eq!(
            structured["hits"][0]["path"], "runbooks/spark-failed-job.md",
            "{structured}"
        );
        assert!(structured["hits"][0]["score"].as_f64().unwrap() > 0.0);
    }
    let records = platform.audit("knowledge");
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(
        records.iter().all(|r| r["tool"] == "search_docs"
            && r["outcome"] == "ok"
            && r["user"] == "developer")
    );
}

#[test]
fn python_sdk_searches_through_the_gateway_in_both_eras() {
    let Some(python) = python() else {
        available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let platform = Platform::start();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/python_client.py"
    );
    for (mode, era) in [("2026-07-28", "2026-07-28"), ("legacy", "2025-11-25")] {
        let out = Command::new(&python)
            .args([
                script,
                &platform.mcp_url,
                mode,
                &platform.token,
                "search_docs",
                r#"{"query": "rerun failed airflow tasks"}"#,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python client failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // The SDK ends a 2025-11-25 session with DELETE and warns unless it hears 200 or 204.
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains("Session termination failed"),
            "{era}: the session did not end cleanly: {stderr}"
        );
        let result: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(result["protocol_version"], era, "{result}");
        assert_eq!(result["tools"], json!(["get_doc", "search_docs"]));
        assert_eq!(result["is_error"], false);
        assert_eq!(
            result["structured"]["hits"][0]["path"], "runbooks/airflow-backfill.md",
            "{result}"
        );
    }
    assert_eq!(platform.audit("knowledge").len(), 2);
}

#[test]
fn inspector_cli_searches_through_the_gateway() {
    let Some(bin) = node_tools() else {
        available("node 22 and @modelcontextprotocol/inspector", false);
        return;
    };
    let platform = Platform::start();
    let catalog = platform.dir.path().join("inspector-catalog.json");
    let auth = format!("Authorization: Bearer {}", platform.token);
    let run = |args: &[&str]| -> Value {
        let out = node_command(&bin, "mcp-inspector")
            .args([
                "--cli",
                &platform.mcp_url,
                "--transport",
                "http",
                "--header",
                &auth,
            ])
            .args(args)
            .env("MCP_CATALOG_PATH", &catalog)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "inspector failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let listed = run(&["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_doc", "search_docs"]);
    let called = run(&[
        "--method",
        "tools/call",
        "--tool-name",
        "search_docs",
        "--tool-arg",
        "query=presto access",
    ]);
    assert_eq!(
        called["structuredContent"]["hits"][0]["path"], "guides/presto-access.md",
        "{called}"
    );
    let records = platform.audit("knowledge");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["outcome"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn knowledge_serves_over_stdio_with_the_local_identity() {
    use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
    let command = tokio::process::Command::new(crate::harness::bin()).configure(|c| {
        c.args(["server", "knowledge", "--stdio"])
            .env("SWITCHBOARD_USER", "local-dev")
            .env("SWITCHBOARD_LOG", "warn")
            .stderr(std::process::Stdio::null());
    });
    let client = ().serve(TokioChildProcess::new(command).unwrap()).await.unwrap();
    assert_eq!(tool_names(&client).await, ["get_doc", "search_docs"]);
    let doc = call(
        &client,
        "get_doc",
        json!({"path": "runbooks/on-call-handoff.md"}),
    )
    .await
    .unwrap();
    assert_eq!(doc.structured_content.unwrap()["title"], "On-call handoff");
    client.cancel().await.unwrap();
}

/// The IDE surface: `switchboard connect` is one stdio MCP server with every tool the user may
/// use, each as `<server>__<tool>`, forwarded to the gateway as the user; driven here by the MCP
/// Inspector CLI over stdio, as an IDE would run it.
#[test]
fn an_ide_reaches_every_permitted_tool_through_switchboard_connect_over_stdio() {
    let Some(bin) = node_tools() else {
        available("node 22 and @modelcontextprotocol/inspector", false);
        return;
    };
    let platform = Platform::start();
    let data_dir = platform.data_dir();
    let attempt = |user: &str, groups: &str, args: &[&str]| {
        node_command(&bin, "mcp-inspector")
            .args(["--cli", "-e"])
            .arg(format!("SWITCHBOARD_GATEWAY_URL={}", platform.gateway_url))
            .arg("-e")
            .arg(format!(
                "SWITCHBOARD_REGISTRY_URL={}",
                platform.registry_url
            ))
            .arg("-e")
            .arg(format!("SWITCHBOARD_DATA_DIR={}", data_dir.display()))
            .arg("-e")
            .arg("SWITCHBOARD_LOG=error")
            .arg(crate::harness::bin())
            .args(["connect", "--dev-user", user, "--dev-groups", groups])
            .args(args)
            .output()
            .unwrap()
    };
    let run = |user: &str, groups: &str, args: &[&str]| -> Value {
        let out = attempt(user, groups, args);
        assert!(
            out.status.success(),
            "inspector failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
    };
    let listed = run("ivy", "employees", &["--method", "tools/list"]);
    let names: Vec<&str> = listed["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for expected in [
        "knowledge__search_docs",
        "sql__run_query",
        "spark__diagnose_failure",
        "airflow__list_dags",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    let called = run(
        "ivy",
        "employees",
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "knowledge__search_docs",
            "--tool-arg",
            "query=presto access",
        ],
    );
    assert_eq!(
        called["structuredContent"]["hits"][0]["path"], "guides/presto-access.md",
        "{called}"
    );
    // Policies hold: the finance tables stay closed to a caller outside finance, and the
    // refusal reaches the IDE as the server said it.
    let refused = attempt(
        "ivy",
        "employees",
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "sql__run_query",
            "--tool-arg",
            "sql=SELECT count(*) FROM finance.ledger",
        ],
    );
    assert!(!refused.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(
        said.contains("denied by policy sql/finance-tables"),
        "{said}"
    );
    let allowed = run(
        "fay",
        "employees,finance",
        &[
            "--method",
            "tools/call",
            "--tool-name",
            "sql__run_query",
            "--tool-arg",
            "sql=SELECT count(*) AS n FROM finance.ledger",
        ],
    );
    assert_ne!(allowed["isError"], true, "{allowed}");
    // The call ran as the user, from the IDE surface.
    let records = platform.audit("knowledge");
    let record = records.iter().find(|r| r["tool"] == "search_docs").unwrap();
    assert_eq!(record["user"], "ivy");
    assert_eq!(record["surface"], "ide");
    // The configuration that plugs it into an IDE.
    let (code, snippet) = platform.cli(&["ide-config", "--client", "vscode"]);
    assert_eq!(code, 0, "{snippet}");
    assert!(snippet.contains("\"connect\""), "{snippet}");
}
