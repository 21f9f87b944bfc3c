//! The SQL server that `switchboard up` ships, through the gateway: an agent finds tables,
//! describes and samples them, runs real queries on the embedded engine over the generated
//! sample warehouse, gets plans with estimates, and has every statement that would change
//! anything refused with a clear reason, however it is disguised.

use serde_json::{Value, json};

use crate::harness::{Platform, call, connect, python_agent, python_output};

fn structured(result: &rmcp::model::CallToolResult) -> Value {
    result.structured_content.clone().unwrap_or(Value::Null)
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
async fn agents_query_the_sample_warehouse_read_only() {
    let platform = Platform::start();
    let url = format!("{}/servers/sql/mcp", platform.gateway_url);
    let agent = connect(&url, &platform.token, true).await;
    let mut tools: Vec<String> = agent
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(
        tools,
        [
            "describe_table",
            "explain_query",
            "list_catalogs",
            "list_schemas",
            "list_tables",
            "run_query",
            "sample_rows"
        ]
    );

    let tables = call(&agent, "list_tables", json!({"schema": "ads"}))
        .await
        .unwrap();
    assert_eq!(
        text(&tables),
        "warehouse.ads.campaigns\nwarehouse.ads.daily_spend\nwarehouse.ads.revenue_by_region"
    );
    let described = call(&agent, "describe_table", json!({"table": "finance.ledger"}))
        .await
        .unwrap();
    assert_eq!(structured(&described)["table"], "warehouse.finance.ledger");
    assert!(
        text(&described).contains("amount_usd Float64"),
        "{}",
        text(&described)
    );
    let sample = call(
        &agent,
        "sample_rows",
        json!({"table": "ads.campaigns", "limit": 3}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&sample)["row_count"], 3);

    // A real query: structured rows for programs, a compact table for the model.
    let spend = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT c.region, count(*) AS days FROM ads.daily_spend s \
                JOIN ads.campaigns c USING (campaign_id) GROUP BY c.region ORDER BY c.region"}),
    )
    .await
    .unwrap();
    assert_ne!(spend.is_error, Some(true), "{}", text(&spend));
    let result = structured(&spend);
    let total: u64 = result["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[1].as_u64().unwrap())
        .sum();
    assert_eq!(total, 40 * 30, "{result}");
    assert_eq!(
        result["tables"],
        json!(["ads.daily_spend", "ads.campaigns"])
    );
    assert!(text(&spend).starts_with("region "), "{}", text(&spend));

    // Too many rows: cut, and said so.
    let many = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT * FROM ads.daily_spend", "max_rows": 7}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&many)["row_count"], 7);
    assert!(
        text(&many).contains("Truncated: the result has more than 7 rows"),
        "{}",
        text(&many)
    );

    let plan = call(
        &agent,
        "explain_query",
        json!({"sql": "SELECT * FROM ads.campaigns"}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&plan)["estimated_rows"], 40, "{}", text(&plan));

    // Nothing that changes anything gets through, however it is dressed up.
    for (sql, reason) in [
        ("DROP TABLE ads.campaigns", "DROP TABLE changes data"),
        ("DELETE FROM finance.ledger", "DELETE changes data"),
        (
            "SELECT 1; DROP TABLE ads.campaigns",
            "exactly one statement",
        ),
        (
            "SELECT 1 /* */; DELETE FROM finance.ledger -- hidden",
            "exactly one statement",
        ),
        (
            "/* SELECT */ INSERT INTO ads.campaigns SELECT * FROM ads.campaigns",
            "INSERT changes data",
        ),
        (
            "CREATE TABLE ads.copy AS SELECT * FROM ads.campaigns",
            "CREATE TABLE changes data",
        ),
        (
            "EXPLAIN ANALYZE SELECT 1",
            "EXPLAIN ANALYZE runs the statement",
        ),
        ("SELEC * FROM ads.campaigns", "does not parse"),
    ] {
        let refused = call(&agent, "run_query", json!({"sql": sql}))
            .await
            .unwrap();
        assert_eq!(refused.is_error, Some(true), "{sql}");
        assert!(text(&refused).contains(reason), "{sql}: {}", text(&refused));
    }
    agent.cancel().await.unwrap();

    // The official Python SDK, in the older protocol era, sees the same.
    if let Some(python) = crate::harness::python() {
        let out = python_output(
            python_agent(
                &python,
                &url,
                "legacy",
                &platform.token,
                "run_query",
                &json!({"sql": "SELECT count(*) AS n FROM finance.ledger"}),
                None,
            )
            .output()
            .unwrap(),
        );
        assert_eq!(out["structured"]["rows"], json!([[500]]), "{out}");
        assert!(
            out["text"][0].as_str().unwrap().contains("(1 row)"),
            "{out}"
        );
    } else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
    }

    // Every call was audited.
    let records = platform.audit("sql");
    assert!(records.iter().filter(|r| r["tool"] == "run_query").count() >= 10);
}
