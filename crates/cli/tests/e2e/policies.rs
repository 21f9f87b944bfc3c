//! Cedar policies end to end: a server's own policies (an argument condition, a bot channel
//! restriction) registered with it, a platform policy on surfaces and environments, and the
//! `switchboard policy` explanations.

use serde_json::json;

use crate::harness::{Platform, call, connect, connect_with, tool_names};

const FINANCE_DOCS: &str = r##"
[server]
name = "finance-docs"
description = "Finance runbooks"
owner_team = "finance-eng"
support_channel = "#finance-eng"
[access]
allowed_groups = ["finance"]
[tools.search_docs]
minutes_saved = 3.0
[tools.get_doc]
minutes_saved = 1.0
"##;

const SERVER_POLICIES: &str = r#"
@id("no-salary-searches")
forbid(principal, action == Mcp::Action::"call", resource == Mcp::Tool::"finance-docs/search_docs")
when { context has args && context.args has query && context.args.query like "*salary*" }
unless { principal in Mcp::Group::"finance-leads" };

@id("bot-channel")
forbid(principal, action, resource)
when { context.surface == "bot" && !(context has channel && context.channel == "finance-help") };
"#;

const PLATFORM_POLICIES: &str = r#"
@id("no-dev-servers-in-web-chat")
forbid(principal, action, resource)
when { context.surface == "web-chat" && resource.environment == "dev" };
"#;

#[tokio::test(flavor = "multi_thread")]
async fn server_and_platform_policies_decide_calls_with_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let platform_file = dir.path().join("platform.cedar");
    std::fs::write(&platform_file, PLATFORM_POLICIES).unwrap();
    let mut platform =
        Platform::start_with(&["--platform-policies", platform_file.to_str().unwrap()]);
    let policies_file = dir.path().join("finance-docs.cedar");
    std::fs::write(&policies_file, SERVER_POLICIES).unwrap();
    platform.start_knowledge_with(
        FINANCE_DOCS,
        &[
            "--environment",
            "prod",
            "--policies",
            policies_file.to_str().unwrap(),
        ],
    );
    let url = format!("{}/servers/finance-docs/mcp", platform.gateway_url);

    // An argument condition: searching salaries needs finance-leads.
    let fiona = connect(&url, &platform.token("fiona", &["finance"]), true).await;
    let denied = call(&fiona, "search_docs", json!({"query": "salary bands"}))
        .await
        .unwrap_err();
    assert!(
        denied
            .message
            .starts_with("denied by policy finance-docs/no-salary-searches"),
        "{}",
        denied.message
    );
    assert_eq!(
        call(&fiona, "search_docs", json!({"query": "presto"}))
            .await
            .unwrap()
            .is_error,
        Some(false)
    );
    fiona.cancel().await.unwrap();
    let lead = connect(
        &url,
        &platform.token("lena", &["finance", "finance-leads"]),
        false,
    )
    .await;
    assert_eq!(
        call(&lead, "search_docs", json!({"query": "salary bands"}))
            .await
            .unwrap()
            .is_error,
        Some(false)
    );
    lead.cancel().await.unwrap();

    // A bot may use the server only in its channel.
    let bot_token = platform.token_with("fiona", &["finance"], &["--surface", "bot"]);
    let elsewhere = connect_with(
        &url,
        &bot_token,
        true,
        &[("x-switchboard-channel", "random")],
    )
    .await;
    assert!(tool_names(&elsewhere).await.is_empty());
    let denied = call(
        &elsewhere,
        "get_doc",
        json!({"path": "guides/presto-access.md"}),
    )
    .await
    .unwrap_err();
    assert!(
        denied
            .message
            .starts_with("denied by policy finance-docs/bot-channel"),
        "{}",
        denied.message
    );
    elsewhere.cancel().await.unwrap();
    let in_channel = connect_with(
        &url,
        &bot_token,
        true,
        &[("x-switchboard-channel", "finance-help")],
    )
    .await;
    assert_eq!(tool_names(&in_channel).await, ["get_doc", "search_docs"]);
    in_channel.cancel().await.unwrap();

    // The platform keeps web chat away from dev servers (the bundled Knowledge server is dev).
    let chat = connect(
        &platform.mcp_url,
        &platform.token_with("fiona", &[], &["--surface", "web-chat"]),
        true,
    )
    .await;
    assert!(tool_names(&chat).await.is_empty());
    let denied = call(&chat, "search_docs", json!({"query": "spark"}))
        .await
        .unwrap_err();
    assert!(
        denied
            .message
            .starts_with("denied by policy platform/no-dev-servers-in-web-chat"),
        "{}",
        denied.message
    );
    chat.cancel().await.unwrap();
    let ide = connect(
        &platform.mcp_url,
        &platform.token_with("fiona", &[], &["--surface", "ide"]),
        true,
    )
    .await;
    assert_eq!(tool_names(&ide).await, ["get_doc", "search_docs"]);
    ide.cancel().await.unwrap();

    // Denials are audited with the policy that decided.
    let records = platform.audit("finance-docs");
    let denied: Vec<&str> = records
        .iter()
        .filter(|r| r["outcome"] == "denied")
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    assert_eq!(denied.len(), 2, "{records:#?}");
    assert!(
        denied
            .iter()
            .any(|d| d.contains("finance-docs/no-salary-searches"))
    );

    // The same answers from the command line.
    let (code, out) = platform.cli(&[
        "policy",
        "check",
        "--user",
        "fiona",
        "--groups",
        "finance",
        "--server",
        "finance-docs",
        "--tool",
        "search_docs",
        "--args",
        r#"{"query": "salary"}"#,
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("DENY") && out.contains("finance-docs/no-salary-searches"),
        "{out}"
    );
    let (code, out) = platform.cli(&[
        "policy",
        "check",
        "--user",
        "fiona",
        "--groups",
        "finance",
        "--server",
        "finance-docs",
        "--tool",
        "get_doc",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with("ALLOW") && out.contains("finance-docs/open-tools"),
        "{out}"
    );
    let (code, out) = platform.cli(&[
        "policy",
        "who-can",
        "--server",
        "finance-docs",
        "--tool",
        "get_doc",
        "--surface",
        "bot",
        "--channel",
        "finance-help",
    ]);
    assert_eq!((code, out.as_str()), (0, "group finance\n"));
}
