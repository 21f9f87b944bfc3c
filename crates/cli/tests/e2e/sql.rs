//! The SQL server that `switchboard up` ships, through the gateway: an agent finds tables,
//! describes and samples them, runs real queries on the embedded engine over the generated
//! sample warehouse, gets plans with estimates, and has every statement that would change
//! anything refused with a clear reason, however it is disguised. Table rules (finance.* for
//! group finance) hold however the SQL names a table; writes go through `run_write`, which
//! previews the change, asks the caller to confirm it and waits for the data owners' approval.

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
            "run_write",
            "sample_rows",
            "switchboard_proposal"
        ]
    );

    let tables = call(&agent, "list_tables", json!({"schema": "ads"}))
        .await
        .unwrap();
    assert_eq!(
        text(&tables),
        "warehouse.ads.campaigns\nwarehouse.ads.daily_spend\nwarehouse.ads.revenue_by_region"
    );
    let described = call(
        &agent,
        "describe_table",
        json!({"table": "ads.daily_spend"}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&described)["table"], "warehouse.ads.daily_spend");
    assert!(
        text(&described).contains("spend_usd Float64"),
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
            "go to the write tool, run_write",
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
                &json!({"sql": "SELECT count(*) AS n FROM ads.campaigns"}),
                None,
            )
            .output()
            .unwrap(),
        );
        assert_eq!(out["structured"]["rows"], json!([[40]]), "{out}");
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

/// The bundled rule "finance.* only for group finance" (`policies.cedar`) holds at the server
/// however a statement names the table, and at the gateway already when a call declares its
/// tables; the finance group reads the ledger.
#[tokio::test(flavor = "multi_thread")]
async fn table_rules_hold_however_the_sql_names_a_table() {
    let platform = Platform::start();
    let url = format!("{}/servers/sql/mcp", platform.gateway_url);
    let agent = connect(&url, &platform.token("dev", &["employees"]), true).await;
    for (tool, args) in [
        (
            "run_query",
            json!({"sql": "SELECT count(*) FROM finance.ledger"}),
        ),
        (
            "run_query",
            json!({"sql": "SELECT * FROM warehouse.FINANCE.\"ledger\" LIMIT 1"}),
        ),
        (
            "run_query",
            json!({"sql": "WITH l AS (SELECT * FROM finance.ledger) SELECT count(*) FROM l"}),
        ),
        (
            "run_query",
            json!({"sql": "SELECT * FROM ads.campaigns WHERE campaign_id IN (SELECT campaign_id FROM finance.ledger)"}),
        ),
        (
            "explain_query",
            json!({"sql": "SELECT * FROM finance.ledger"}),
        ),
        ("describe_table", json!({"table": "Finance.Ledger"})),
        ("sample_rows", json!({"table": "warehouse.finance.ledger"})),
    ] {
        let denied = call(&agent, tool, args.clone()).await.unwrap_err();
        assert_eq!(denied.code.0, -32003, "{tool} {args}");
        assert!(
            denied.message.contains("sql/finance-tables"),
            "{tool} {args}: {}",
            denied.message
        );
    }
    // Declared, the tables are checked by the gateway before the call leaves it...
    let declared = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT count(*) FROM finance.ledger", "tables": ["finance.ledger"], "schemas": ["finance"]}),
    )
    .await
    .unwrap_err();
    assert!(
        declared.message.contains("sql/finance-tables"),
        "{}",
        declared.message
    );
    // ...and a declaration that hides what the statement reads is refused.
    let hidden = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT count(*) FROM finance.ledger", "tables": ["ads.campaigns"], "schemas": ["ads"]}),
    )
    .await
    .unwrap();
    assert_eq!(hidden.is_error, Some(true));
    assert!(
        text(&hidden).contains("declares tables"),
        "{}",
        text(&hidden)
    );
    // Everything else stays open to everyone.
    let ads = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT count(*) AS n FROM ads.campaigns", "tables": ["ads.campaigns"]}),
    )
    .await
    .unwrap();
    assert_eq!(structured(&ads)["rows"], json!([[40]]), "{}", text(&ads));

    let finance = connect(
        &url,
        &platform.token("fay", &["employees", "finance"]),
        true,
    )
    .await;
    let ledger = call(
        &finance,
        "run_query",
        json!({"sql": "SELECT count(*) AS n FROM finance.ledger"}),
    )
    .await
    .unwrap();
    assert_eq!(
        structured(&ledger)["rows"],
        json!([[500]]),
        "{}",
        text(&ledger)
    );

    // The gateway refused the declared call itself; the server refused the others.
    let records = platform.audit("sql");
    let outcomes: Vec<&str> = records
        .iter()
        .filter(|r| r["user"] == "dev")
        .map(|r| r["outcome"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "denied").count(),
        1,
        "{outcomes:?}"
    );
    agent.cancel().await.unwrap();
    finance.cancel().await.unwrap();
}

/// What the registry says about `server`'s proposals in `state`, as `token` sees them.
fn proposals(platform: &Platform, token: &str, state: &str) -> Vec<Value> {
    let list = crate::harness::blocking_get(
        &format!(
            "{}/v1/proposals?server=sql&state={state}",
            platform.registry_url
        ),
        token,
    );
    list["proposals"].as_array().cloned().unwrap_or_default()
}

/// A write previews what it would change, the caller confirms it (in either protocol era), and
/// it becomes a proposal carrying the preview; it runs once the data owners approve it, as the
/// caller, and a later query reads the new table. A caller who declines proposes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn writes_are_previewed_confirmed_and_run_once_the_owners_approve() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let platform = Platform::start_with(&["--approval-wait-secs", "0"]);
    let url = format!("{}/servers/sql/mcp", platform.gateway_url);
    let developer = platform.token("dev", &["employees"]);
    let owner = platform.token("olga", &["employees", "data-eng"]);
    let create = json!({"sql": "CREATE TABLE ads.top_campaigns AS SELECT campaign_id, daily_budget_usd FROM ads.campaigns ORDER BY daily_budget_usd DESC LIMIT 10"});

    // Declined (2026-07-28): nothing is proposed.
    let declined = python_output(
        python_agent(
            &python,
            &url,
            "2026-07-28",
            &developer,
            "run_write",
            &create,
            Some("decline"),
        )
        .output()
        .unwrap(),
    );
    assert_eq!(declined["is_error"], true, "{declined}");
    assert!(
        declined["text"][0]
            .as_str()
            .unwrap()
            .contains("you declined"),
        "{declined}"
    );
    assert!(proposals(&platform, &owner, "pending").is_empty());

    // Confirmed (2025-11-25, elicitation on the call's stream): a proposal with the preview.
    let confirmed = python_output(
        python_agent(
            &python,
            &url,
            "legacy",
            &developer,
            "run_write",
            &create,
            Some("accept"),
        )
        .output()
        .unwrap(),
    );
    let question = confirmed["asked"][0].as_str().unwrap_or_default();
    assert!(
        question.contains("Create warehouse.ads.top_campaigns (a new table): writes about 10 rows"),
        "{confirmed}"
    );
    // Not run yet: an answer the tool's output schema cannot describe comes marked as an error.
    assert_eq!(confirmed["is_error"], true, "{confirmed}");
    let pending_text = confirmed["text"][0].as_str().unwrap();
    assert!(
        pending_text.contains("needs approval by owners"),
        "{confirmed}"
    );
    assert!(
        pending_text.contains("What it would change: Create warehouse.ads.top_campaigns"),
        "{confirmed}"
    );
    let pending = proposals(&platform, &owner, "pending");
    assert_eq!(pending.len(), 1, "{pending:?}");
    let proposal = &pending[0];
    let id = proposal["id"].as_str().unwrap().to_owned();
    assert_eq!(proposal["tool"], "run_write");
    assert_eq!(
        proposal["preview"]["details"]["estimated_rows"], 10,
        "{proposal}"
    );
    assert_eq!(
        proposal["preview"]["details"]["table"],
        "warehouse.ads.top_campaigns"
    );
    // Nothing was written yet.
    let agent = connect(&url, &developer, true).await;
    let missing = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT count(*) FROM ads.top_campaigns"}),
    )
    .await
    .unwrap();
    assert_eq!(missing.is_error, Some(true), "{}", text(&missing));

    // The approvers see the preview; the requester cannot approve; an owner does.
    let (_, listed) = platform.cli(&["approvals", "list", "--server", "sql", "--token", &owner]);
    assert!(
        listed.contains("would change: Create warehouse.ads.top_campaigns"),
        "{listed}"
    );
    let (code, _) = platform.cli(&["approvals", "approve", &id, "--token", &developer]);
    assert_ne!(code, 0, "the requester approved their own write");
    let (code, out) = platform.cli(&[
        "approvals",
        "approve",
        &id,
        "--comment",
        "fine",
        "--token",
        &owner,
    ]);
    assert_eq!(code, 0, "{out}");
    let ran = call(&agent, "switchboard_proposal", json!({"id": id}))
        .await
        .unwrap();
    assert!(
        text(&ran).contains("done: create warehouse.ads.top_campaigns (10 rows written)"),
        "{}",
        text(&ran)
    );
    let written = call(
        &agent,
        "run_query",
        json!({"sql": "SELECT count(*) AS n FROM ads.top_campaigns"}),
    )
    .await
    .unwrap();
    assert_eq!(
        structured(&written)["rows"],
        json!([[10]]),
        "{}",
        text(&written)
    );

    // An append, confirmed in the 2026-07-28 era, previews the rows it adds to those there.
    let append = json!({"sql": "INSERT INTO ads.top_campaigns SELECT campaign_id, daily_budget_usd FROM ads.campaigns LIMIT 3"});
    let confirmed = python_output(
        python_agent(
            &python,
            &url,
            "2026-07-28",
            &developer,
            "run_write",
            &append,
            Some("accept"),
        )
        .output()
        .unwrap(),
    );
    assert!(
        confirmed["asked"][0].as_str().unwrap_or_default()
            .contains("Append to warehouse.ads.top_campaigns (10 rows now): writes about 3 rows, leaving 13 rows"),
        "{confirmed}"
    );
    assert_eq!(proposals(&platform, &owner, "pending").len(), 1);

    // Writes to finance tables obey the table rules before anything is previewed.
    let denied = call(
        &agent,
        "run_write",
        json!({"sql": "CREATE TABLE ads.ledger_copy AS SELECT * FROM finance.ledger"}),
    )
    .await
    .unwrap_err();
    assert!(
        denied.message.contains("sql/finance-tables"),
        "{}",
        denied.message
    );
    agent.cancel().await.unwrap();

    let records = platform.audit("sql");
    let writes: Vec<&str> = records
        .iter()
        .filter(|r| r["tool"] == "run_write")
        .map(|r| r["outcome"].as_str().unwrap_or_default())
        .collect();
    assert!(writes.contains(&"pending_approval"), "{writes:?}");
    assert!(writes.contains(&"ok"), "{writes:?}");
}
