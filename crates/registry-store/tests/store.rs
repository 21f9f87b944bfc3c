//! The store contract, run against the SQLite store.

use catalog::Manifest;
use registry_api::{AuditRecord, Outcome, RegisterServer, ToolDefinition};
use registry_store::{AuditFilter, SqliteStore, Store, StoreError};

fn registration(description: &str) -> RegisterServer {
    let manifest = Manifest::parse(&format!(
        r##"
        [server]
        name = "presto"
        description = "{description}"
        owner_team = "data"
        support_channel = "#presto"
        [access]
        allowed_groups = ["finance"]
        [policies.revenue]
        groups = ["ads-eng"]
        [tools.revenue]
        minutes_saved = 10
        sensitivity = "high"
        policy = "revenue"
        "##
    ))
    .unwrap();
    RegisterServer {
        manifest,
        endpoint: "http://127.0.0.1:1/mcp".into(),
        environment: "prod".into(),
        tools: vec![
            ToolDefinition {
                name: "revenue".into(),
                title: None,
                description: Some("Revenue".into()),
                input_schema: serde_json::json!({"type": "object"}),
                output_schema: None,
                annotations: None,
            },
            ToolDefinition {
                name: "tables".into(),
                title: None,
                description: None,
                input_schema: serde_json::json!({"type": "object"}),
                output_schema: None,
                annotations: None,
            },
        ],
        policies: String::new(),
    }
}

fn audit(id: &str, time_ms: i64, user: &str) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        time_ms,
        user: user.into(),
        groups: vec!["finance".into()],
        surface: None,
        server: "presto".into(),
        method: "tools/call".into(),
        tool: Some("revenue".into()),
        argument_digest: Some("ab".into()),
        outcome: Outcome::ToolError,
        is_error: true,
        detail: None,
        latency_ms: 7,
    }
}

#[tokio::test]
async fn servers_round_trip_and_update() {
    let store = SqliteStore::in_memory().await.unwrap();
    let first = store
        .upsert_server(&registration("v1"), 1000)
        .await
        .unwrap();
    assert_eq!(first.allowed_groups, vec!["finance"]);
    assert_eq!(first.tools.len(), 2);
    assert_eq!(
        first.tools[0].policy.as_ref().unwrap().groups,
        vec!["ads-eng"]
    );
    assert_eq!(first.tools[0].minutes_saved, 10.0);
    assert_eq!(first.tools[1].sensitivity, "low");

    let second = store
        .upsert_server(&registration("v2"), 2000)
        .await
        .unwrap();
    assert_eq!(second.description, "v2");
    assert_eq!(second.registered_at_ms, 1000);
    assert_eq!(second.updated_at_ms, 2000);
    assert_eq!(store.list_servers().await.unwrap().len(), 1);
    assert!(matches!(
        store.get_server("nope").await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn duplicate_tools_are_a_conflict() {
    let store = SqliteStore::in_memory().await.unwrap();
    let mut reg = registration("v1");
    reg.tools.push(reg.tools[0].clone());
    assert!(matches!(
        store.upsert_server(&reg, 1).await,
        Err(StoreError::Conflict(_))
    ));
}

#[tokio::test]
async fn audit_is_idempotent_filtered_and_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    {
        let store = SqliteStore::open(&path).await.unwrap();
        store.append_audit(&audit("a", 1, "alice")).await.unwrap();
        store.append_audit(&audit("a", 1, "alice")).await.unwrap();
        store.append_audit(&audit("b", 2, "bob")).await.unwrap();
    }
    // Reopen: what was acknowledged is still there.
    let store = SqliteStore::open(&path).await.unwrap();
    let all = store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"]
    );
    assert_eq!(all[1], audit("a", 1, "alice"));
    let bob = store
        .list_audit(&AuditFilter {
            user: Some("bob".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(bob.len(), 1);
}
