//! The audit and the north-star, end to end: concurrent agents call through the gateway and
//! every call yields exactly one audit record (arguments kept, secrets redacted, the owner's
//! estimate and team with it); the month's report (`switchboard report`) adds up to exactly what
//! the audit holds; feedback shows beside the tool; the export (JSON lines, CSV) holds every
//! record; and a SIGKILL of the platform under load loses no record of a call that was answered.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::harness::{Platform, call, connect};

/// `n` calls of `search_docs`, `parallel` at a time, each connection as one of `users` users
/// (every user has one when `parallel >= users`); returns how many were answered without error.
async fn load(platform: &Platform, n: usize, users: usize, parallel: usize) -> usize {
    let url = format!("{}/servers/knowledge/mcp", platform.gateway_url);
    let tokens: Vec<String> = (0..users)
        .map(|u| platform.token(&format!("user{u:03}"), &["employees"]))
        .collect();
    let mut clients = Vec::new();
    for i in 0..parallel {
        clients.push(connect(&url, &tokens[i % users], i % 2 == 0).await);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let calls = (i..n).step_by(parallel).count();
        tasks.spawn(async move {
            let mut ok = 0;
            for c in 0..calls {
                let answered = call(
                    &client,
                    "search_docs",
                    json!({"query": format!("presto access {c}"), "limit": 3, "api_token": "s3cret-value"}),
                )
                .await;
                if answered.is_ok_and(|r| r.is_error != Some(true)) {
                    ok += 1;
                }
            }
            client.cancel().await.unwrap();
            ok
        });
    }
    let mut ok = 0;
    while let Some(done) = tasks.join_next().await {
        ok += done.unwrap();
    }
    ok
}

fn calls_of(records: &[Value], tool: &str) -> Vec<Value> {
    records
        .iter()
        .filter(|r| r["method"] == "tools/call" && r["tool"] == tool)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_call_is_audited_once_and_the_month_report_adds_up_to_the_audit() {
    let platform = Platform::start();
    let n = 240;
    let ok = load(&platform, n, 24, 24).await;
    assert_eq!(ok, n);

    let records = platform.audit("knowledge");
    let searches = calls_of(&records, "search_docs");
    assert_eq!(searches.len(), n, "N calls, N records");
    let ids: HashSet<&str> = searches.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), n, "no record is duplicated");
    let first = &searches[0];
    assert_eq!(first["outcome"], "ok", "{first}");
    assert_eq!(first["arguments"]["api_token"], "[redacted]", "{first}");
    assert!(
        first["arguments"]["query"]
            .as_str()
            .unwrap()
            .starts_with("presto access"),
        "{first}"
    );
    assert_eq!(first["team"], "agent-foundations", "{first}");
    let estimate = first["minutes_saved"].as_f64().unwrap();
    assert!(estimate > 0.0);
    let raw = serde_json::to_string(&records).unwrap();
    assert!(!raw.contains("s3cret-value"), "a secret reached the audit");

    // The gateway's and the registry's metrics count the same calls.
    let text = |url: String| async move { reqwest::get(url).await.unwrap().text().await.unwrap() };
    let gateway = text(format!("{}/metrics", platform.gateway_url)).await;
    assert!(
        gateway.contains(&format!(
            "switchboard_gateway_tool_calls_total{{server=\"knowledge\",tool=\"search_docs\",outcome=\"ok\"}} {n}"
        )),
        "{gateway}"
    );
    assert!(
        gateway.contains("switchboard_gateway_tool_call_duration_seconds_bucket{le=\"0.005\",server=\"knowledge\",tool=\"search_docs\"}")
            || gateway.contains("switchboard_gateway_tool_call_duration_seconds_count{server=\"knowledge\",tool=\"search_docs\"}"),
        "{gateway}"
    );
    assert!(
        gateway.contains("switchboard_gateway_audit_spooled_records 0"),
        "{gateway}"
    );
    let registry = text(format!("{}/metrics", platform.registry_url)).await;
    assert!(
        registry.contains("switchboard_registry_servers 4"),
        "{registry}"
    );
    assert!(
        registry.contains("switchboard_registry_proposals{state=\"pending\"} 0"),
        "{registry}"
    );
    assert!(
        registry
            .contains("switchboard_registry_http_requests_total{method=\"POST\",status=\"2xx\"}"),
        "{registry}"
    );

    // A rating, beside the tool's estimate.
    let (code, out) = platform.cli(&[
        "feedback",
        "knowledge",
        "search_docs",
        "down",
        "--comment",
        "missed the runbook",
    ]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = platform.cli(&["feedback", "knowledge", "no_such_tool", "up"]);
    assert_ne!(code, 0, "{out}");

    // The month's report equals the audit's totals.
    let (code, out) = platform.cli(&["report", "--json"]);
    assert_eq!(code, 0, "{out}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let all_calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["method"] == "tools/call")
        .collect();
    let succeeded: Vec<&&Value> = all_calls.iter().filter(|r| r["outcome"] == "ok").collect();
    let minutes: f64 = succeeded
        .iter()
        .map(|r| r["minutes_saved"].as_f64().unwrap_or(0.0))
        .sum();
    let totals = &report["totals"];
    assert_eq!(totals["calls"], all_calls.len(), "{totals}");
    assert_eq!(totals["succeeded"], succeeded.len(), "{totals}");
    assert_eq!(totals["users"], 24, "{totals}");
    assert!(
        (totals["minutes_saved"].as_f64().unwrap() - minutes).abs() < 0.01,
        "{totals} vs {minutes}"
    );
    let tool = report["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tool"] == "search_docs")
        .unwrap();
    assert_eq!(tool["calls"], n);
    assert_eq!(tool["estimate_minutes"], estimate);
    assert_eq!(tool["feedback"], json!({"up": 0, "down": 1}));
    assert_eq!(report["teams"][0]["name"], "agent-foundations");
    // The table says the same.
    let (code, table) = platform.cli(&["report"]);
    assert_eq!(code, 0, "{table}");
    assert!(table.contains("knowledge/search_docs"), "{table}");
    assert!(table.contains("24 monthly active users"), "{table}");

    // The export holds every record, as JSON lines and as CSV.
    let (code, jsonl) = platform.cli(&["audit", "export", "--server", "knowledge"]);
    assert_eq!(code, 0, "{jsonl}");
    assert_eq!(jsonl.lines().count(), records.len());
    let exported: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(calls_of(&exported, "search_docs").len(), n);
    let (code, csv) = platform.cli(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--server",
        "knowledge",
        "--tool",
        "search_docs",
    ]);
    assert_eq!(code, 0, "{csv}");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("id,time_ms,user,groups"));
    assert_eq!(lines.count(), n);
}

#[tokio::test(flavor = "multi_thread")]
async fn no_answered_call_loses_its_record_when_the_platform_is_killed_under_load() {
    killed_under_load(&[]).await;
}

/// With `--audit-sync os` a record is written to the journal, not yet synced, when its call is
/// answered: a crash of the process (not of the machine) still loses none.
#[tokio::test(flavor = "multi_thread")]
async fn records_written_but_not_yet_synced_survive_the_platform_being_killed() {
    killed_under_load(&["--audit-sync", "os"]).await;
}

async fn killed_under_load(flags: &[&str]) {
    let mut platform = Platform::start_on_fixed_ports(flags);
    let url = format!("{}/servers/knowledge/mcp", platform.gateway_url);
    // Six agents (both eras) call back to back, each call named by its own query, until the
    // platform dies under them.
    let answered = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut agents = tokio::task::JoinSet::new();
    for a in 0..6 {
        let token = platform.token(&format!("user{a:03}"), &["employees"]);
        let client = connect(&url, &token, a % 2 == 0).await;
        let answered = answered.clone();
        agents.spawn(async move {
            for c in 0.. {
                let query = format!("presto access {a}-{c}");
                let params = rmcp::model::CallToolRequestParams::new("search_docs").with_arguments(
                    json!({"query": query, "limit": 3})
                        .as_object()
                        .unwrap()
                        .clone(),
                );
                match tokio::time::timeout(Duration::from_secs(10), client.call_tool(params)).await
                {
                    Ok(Ok(result)) if result.is_error != Some(true) => {
                        answered.lock().unwrap().push(query)
                    }
                    Ok(Ok(_)) => {}
                    // The platform is gone: this agent stops.
                    Ok(Err(_)) | Err(_) => return,
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the agents made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGKILL with calls in flight: no shutdown of any kind.
    platform.crash_and_restart();
    while agents.join_next().await.is_some() {}
    let answered = answered.lock().unwrap().clone();
    let records = platform.audit("knowledge");
    let searches = calls_of(&records, "search_docs");
    let recorded: HashSet<&str> = searches
        .iter()
        .filter(|r| r["outcome"] == "ok")
        .filter_map(|r| r["arguments"]["query"].as_str())
        .collect();
    let lost: Vec<&String> = answered
        .iter()
        .filter(|q| !recorded.contains(q.as_str()))
        .collect();
    assert!(lost.is_empty(), "answered calls without a record: {lost:?}");
    // One record per call: the records of the answered calls are not doubled by the restart.
    let ids: HashSet<&str> = searches.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), searches.len());
    // And it keeps recording after the restart.
    let before = searches.len();
    assert_eq!(load(&platform, 12, 2, 2).await, 12);
    assert_eq!(
        calls_of(&platform.audit("knowledge"), "search_docs").len(),
        before + 12
    );
}

/// The dashboard and the audit page, in a real browser: the figures the report gives, the
/// charts drawn, the audit searched; screenshots are kept as CI artifacts.
#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_and_the_audit_page_show_the_month_in_a_browser() {
    if !crate::ui::browser_available() {
        return;
    }
    let platform = Platform::start();
    assert_eq!(load(&platform, 40, 8, 8).await, 40);
    let (_, out) = platform.cli(&["report", "--json"]);
    let report: Value = serde_json::from_str(&out).unwrap();
    let shots = crate::ui::screenshots("insights");
    let seen = crate::ui::run_browser(
        "ui-insights.mjs",
        &[
            platform.registry_url.as_ref(),
            shots.as_os_str(),
            "audra".as_ref(),
            "employees, platform-admins".as_ref(),
            "presto access 3".as_ref(),
        ],
    );
    let totals = &report["totals"];
    assert_eq!(
        seen["hoursSaved"],
        format!("{:.1}", totals["hours_saved"].as_f64().unwrap()),
        "{seen}"
    );
    assert_eq!(seen["successfulCalls"], "40", "{seen}");
    assert_eq!(seen["activeUsers"], "8", "{seen}");
    assert_eq!(seen["errorRate"], "0.00%", "{seen}");
    assert_eq!(seen["dailyBars"], 1, "{seen}");
    assert_eq!(seen["toolBars"], 1, "{seen}");
    assert_eq!(seen["topTool"], "knowledge/search_docs", "{seen}");
    // `presto access 3` is in the arguments of the calls numbered 3 on each of the 8 clients.
    assert_eq!(seen["auditRows"], 8, "{seen}");
    assert_eq!(seen["redacted"], true, "{seen}");
    assert!(
        seen["exportLink"]
            .as_str()
            .unwrap()
            .starts_with("/ui/audit/export?format=csv&q=presto+access+3"),
        "{seen}"
    );
    assert!(shots.join("21-insights-dashboard.png").exists());
}

/// `switchboard up --demo-traffic`: generated traffic through the real gateway, laid out over
/// the last 30 days, adds up in the report to exactly the calls it made, with proposals decided.
#[tokio::test(flavor = "multi_thread")]
async fn demo_traffic_fills_a_month_that_the_report_adds_up() {
    let platform = Platform::start_with(&[
        "--demo-traffic",
        "--demo-calls",
        "600",
        "--demo-users",
        "60",
    ]);
    let done = platform.data_dir().join("demo-traffic.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(240);
    while !done.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the demo traffic did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(&done).unwrap()).unwrap();
    assert_eq!(summary["calls"], 600, "{summary}");
    // The calls span this month and perhaps the last; together they are every call made.
    let report = |month: Option<&str>| {
        let mut args = vec!["report", "--json"];
        if let Some(m) = month {
            args.extend(["--month", m]);
        }
        let (code, out) = platform.cli(&args);
        assert_eq!(code, 0, "{out}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let this = report(None);
    let month = this["month"].as_str().unwrap().to_owned();
    let (year, m): (i32, u32) = (month[..4].parse().unwrap(), month[5..].parse().unwrap());
    let previous = if m == 1 {
        format!("{}-12", year - 1)
    } else {
        format!("{year}-{:02}", m - 1)
    };
    let last = report(Some(&previous));
    let calls = |r: &Value| r["totals"]["calls"].as_u64().unwrap();
    assert_eq!(calls(&this) + calls(&last), 600, "{this} {last}");
    let days = this["days"].as_array().unwrap().len() + last["days"].as_array().unwrap().len();
    assert!(days >= 15, "{days} days with traffic");
    let users = this["totals"]["users"].as_u64().unwrap();
    assert!(users > 20, "{users} users");
    let denied =
        this["totals"]["denied"].as_u64().unwrap() + last["totals"]["denied"].as_u64().unwrap();
    let errors =
        this["totals"]["errors"].as_u64().unwrap() + last["totals"]["errors"].as_u64().unwrap();
    assert!(denied > 0 && errors > 0, "{this}");
    assert!(this["totals"]["hours_saved"].as_f64().unwrap() > 0.0);
    // The only queries that fail are the deliberate typos: every other demo query is valid.
    for record in platform.audit("sql") {
        if record["tool"] == "run_query" && record["outcome"] == "tool_error" {
            let sql = record["arguments"]["sql"].as_str().unwrap_or_default();
            assert!(sql.starts_with("SELEC "), "a demo query failed: {record}");
        }
    }
    // Proposals are made now (their decisions are real); the demo's owner decided them all.
    let proposals = &this["proposals"];
    assert_eq!(
        proposals["created"].as_u64().unwrap(),
        summary["proposals_approved"].as_u64().unwrap()
            + summary["proposals_rejected"].as_u64().unwrap(),
        "{proposals} {summary}"
    );
    assert_eq!(proposals["pending"], 0, "{proposals}");
}
