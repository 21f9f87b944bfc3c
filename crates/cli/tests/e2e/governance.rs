//! Governance end to end: authentication at the gateway, business-group gating and tool policies
//! with explicit denials, identity that servers can verify (and forgeries they refuse), sessions
//! bound to their user, and exactly one audit record per call with its real outcome.

use serde_json::{Value, json};

use crate::harness::{FINANCE_DOCS, Platform, call, connect, tool_names};

#[tokio::test(flavor = "multi_thread")]
async fn groups_and_policies_filter_lists_and_deny_calls_explicitly() {
    let mut platform = Platform::start();
    platform.start_knowledge(FINANCE_DOCS);
    let url = format!("{}/servers/finance-docs/mcp", platform.gateway_url);
    let search = json!({"query": "presto"});
    let read = json!({"path": "guides/presto-access.md"});

    for modern in [true, false] {
        // Outside the server's groups: sees nothing, and a call is refused by name, not "not found".
        let eng = connect(&url, &platform.token("erin", &["eng"]), modern).await;
        assert!(tool_names(&eng).await.is_empty());
        let denied = call(&eng, "search_docs", search.clone()).await.unwrap_err();
        assert_eq!(denied.code.0, -32003);
        assert!(
            denied
                .message
                .contains("denied by policy finance-docs/server-access"),
            "{}",
            denied.message
        );
        assert!(
            denied.message.contains("restricted to groups [finance]"),
            "{}",
            denied.message
        );
        eng.cancel().await.unwrap();

        // In the group but not in the tool's policy: the tool is hidden and its call names the policy.
        let fin = connect(&url, &platform.token("fiona", &["finance"]), modern).await;
        assert_eq!(tool_names(&fin).await, ["search_docs"]);
        assert_eq!(
            call(&fin, "search_docs", search.clone())
                .await
                .unwrap()
                .is_error,
            Some(false)
        );
        let denied = call(&fin, "get_doc", read.clone()).await.unwrap_err();
        assert_eq!(denied.code.0, -32003);
        assert!(
            denied
                .message
                .contains("denied by policy finance-docs/finance-leads"),
            "{}",
            denied.message
        );
        assert_eq!(denied.data.unwrap()["policy"], "finance-docs/finance-leads");
        // A tool the server never registered is denied, not forwarded.
        let unknown = call(&fin, "drop_tables", json!({})).await.unwrap_err();
        assert!(
            unknown
                .message
                .contains("tool drop_tables is not registered"),
            "{}",
            unknown.message
        );
        fin.cancel().await.unwrap();

        // A finance lead sees and calls everything.
        let lead = connect(
            &url,
            &platform.token("lena", &["finance", "finance-leads"]),
            modern,
        )
        .await;
        assert_eq!(tool_names(&lead).await, ["get_doc", "search_docs"]);
        let doc = call(&lead, "get_doc", read.clone()).await.unwrap();
        assert_eq!(
            doc.structured_content.unwrap()["title"],
            "Requesting Presto access"
        );
        lead.cancel().await.unwrap();
    }
    // Other requests to a server the caller may not use are refused by name and audited too.
    let eng = connect(&url, &platform.token("erin", &["eng"]), true).await;
    let refused = eng.list_prompts(None).await.unwrap_err().to_string();
    assert!(
        refused.contains("denied by policy finance-docs/server-access"),
        "{refused}"
    );
    eng.cancel().await.unwrap();

    // Exactly one audit record per call, with the real outcome: per era, 1 + 1 + 1 denials,
    // 1 ok search and 1 ok read; and the refused prompts/list.
    let records = platform.audit("finance-docs");
    let prompts: Vec<&Value> = records
        .iter()
        .filter(|r| r["method"] == "prompts/list")
        .collect();
    assert_eq!(prompts.len(), 1, "{records:#?}");
    assert_eq!(
        (prompts[0]["user"].as_str(), prompts[0]["outcome"].as_str()),
        (Some("erin"), Some("denied"))
    );
    let records: Vec<Value> = records
        .into_iter()
        .filter(|r| r["method"] == "tools/call")
        .collect();
    let count = |user: &str, outcome: &str| {
        records
            .iter()
            .filter(|r| r["user"] == user && r["outcome"] == outcome)
            .count()
    };
    assert_eq!(records.len(), 10, "{records:#?}");
    assert_eq!(count("erin", "denied"), 2);
    assert_eq!(count("fiona", "ok"), 2);
    assert_eq!(count("fiona", "denied"), 4);
    assert_eq!(count("lena", "ok"), 2);
    let denial = records
        .iter()
        .find(|r| r["user"] == "fiona" && r["tool"] == "get_doc")
        .unwrap();
    assert_eq!(denial["is_error"], true);
    assert!(denial["detail"].as_str().unwrap().contains("finance-leads"));
    assert_eq!(denial["argument_digest"].as_str().unwrap().len(), 64);
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_errors_and_successes_are_audited_with_their_outcome() {
    let platform = Platform::start();
    let client = connect(
        &platform.mcp_url,
        &platform.token("ada", &["employees"]),
        true,
    )
    .await;
    assert_eq!(
        call(&client, "search_docs", json!({"query": "backfill"}))
            .await
            .unwrap()
            .is_error,
        Some(false)
    );
    assert_eq!(
        call(&client, "get_doc", json!({"path": "missing.md"}))
            .await
            .unwrap()
            .is_error,
        Some(true)
    );
    assert_eq!(
        call(&client, "search_docs", json!({"query": "x", "limit": 99}))
            .await
            .unwrap()
            .is_error,
        Some(true)
    );
    client.cancel().await.unwrap();
    let mut records = platform.audit("knowledge");
    records.reverse();
    let outcomes: Vec<(&str, &str, bool)> = records
        .iter()
        .map(|r| {
            (
                r["tool"].as_str().unwrap(),
                r["outcome"].as_str().unwrap(),
                r["is_error"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        outcomes,
        [
            ("search_docs", "ok", false),
            ("get_doc", "tool_error", true),
            ("search_docs", "tool_error", true)
        ]
    );
    assert!(
        records
            .iter()
            .all(|r| r["user"] == "ada" && r["latency_ms"].as_u64().is_some())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_or_bad_tokens_get_401_with_a_challenge() {
    let platform = Platform::start();
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}});
    let tampered = platform.token("x", &[]);
    let tampered = &tampered[..tampered.len() - 4];
    for token in [None, Some("not-a-jwt"), Some(tampered)] {
        let mut request = http
            .post(&platform.mcp_url)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            challenge.starts_with("Bearer realm=\"switchboard\""),
            "{challenge}"
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], -32001);
    }
    // Health and readiness need no token; the gateway is ready once it has read the catalog.
    for url in [&platform.gateway_url, &platform.registry_url] {
        let ready = http.get(format!("{url}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{url}");
    }
    // Rejected tokens never reach the logs (the log does hold the token `up` prints on purpose).
    let log = std::fs::read_to_string(platform.dir.path().join("up.log")).unwrap();
    assert!(log.contains("rejected a caller"), "{log}");
    assert!(
        !log.contains("not-a-jwt") && !log.contains(&tampered[tampered.len() - 30..]),
        "a token leaked into the log"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn servers_refuse_forged_identity_sent_around_the_gateway() {
    let mut platform = Platform::start();
    let direct = format!(
        "{}/mcp",
        platform.start_knowledge(&FINANCE_DOCS.replace("finance-docs", "finance-direct"))
    );
    let http = reqwest::Client::new();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "forger", "version": "1"}}});
    let forged = [
        vec![
            ("x-forwarded-user", "lena"),
            ("x-forwarded-groups", "finance,finance-leads"),
        ],
        vec![
            ("x-forwarded-user", "lena"),
            ("x-switchboard-assertion", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"),
        ],
        vec![],
    ];
    for headers in forged {
        let mut request = http
            .post(&direct)
            .header("accept", "application/json, text/event-stream")
            .json(&body);
        for (k, v) in &headers {
            request = request.header(*k, *v);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "headers {headers:?} were accepted");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("unauthenticated"),
            "{error}"
        );
    }
    // The user's own token is no identity to a server either: the gateway never forwards it.
    let response = http
        .post(&direct)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&platform.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_session_belongs_to_the_user_who_opened_it() {
    let platform = Platform::start();
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let response = http
        .post(&platform.mcp_url)
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(platform.token("alice", &[]))
        .json(&init)
        .send()
        .await
        .unwrap();
    let session = response.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
    let hijack = http
        .post(&platform.mcp_url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-11-25")
        .bearer_auth(platform.token("mallory", &[]))
        .json(&list)
        .send()
        .await
        .unwrap();
    assert_eq!(hijack.status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_client_goes_away_is_still_audited_once() {
    let mut platform = Platform::start();
    platform.start_conformance_fixture();
    let url = format!("{}/servers/conformance/mcp", platform.gateway_url);
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "test_reconnection", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    // Warm the gateway's catalog, so the abandoned call below really reaches the server.
    let warm = connect(&url, &platform.token("quitter", &[]), true).await;
    assert!(
        tool_names(&warm)
            .await
            .contains(&"test_reconnection".to_owned())
    );
    warm.cancel().await.unwrap();
    let sent = reqwest::Client::new()
        .post(&url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "test_reconnection")
        .bearer_auth(platform.token("quitter", &[]))
        .json(&body)
        .timeout(std::time::Duration::from_millis(30))
        .send()
        .await;
    // The tool takes 100 ms; the client gives up long before (on the headers or on the body).
    if let Ok(response) = sent {
        assert!(
            response.text().await.is_err(),
            "the body should not have arrived in time"
        );
    }
    // Give the server time to finish and the gateway time to notice the client is gone.
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    let records = platform.audit("conformance");
    assert_eq!(records.len(), 1, "{records:#?}");
    assert_eq!(records[0]["outcome"], "error");
    assert_eq!(
        records[0]["detail"],
        "the client disconnected before the result"
    );
}
