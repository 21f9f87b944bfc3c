//! An audit record is durable in the gateway's journal before its call is answered, survives the
//! registry being down, and is delivered (once) when the registry is back.

use std::sync::Arc;

use gateway::{AuditSink, AuditSync};
use identity::{Claims, KeySource, SigningKey, TrustedIssuer, Verifier, jwks_document};
use registry::{RegistryConfig, RegistryState};
use registry_api::{AuditRecord, Outcome};
use registry_client::{Credentials, RegistryClient};
use registry_store::{AuditFilter, SqlStore, Store};

fn record(id: &str) -> AuditRecord {
    AuditRecord {
        id: id.into(),
        time_ms: 1,
        user: "alice".into(),
        groups: vec![],
        surface: None,
        channel: None,
        server: "knowledge".into(),
        method: "tools/call".into(),
        tool: Some("search_docs".into()),
        argument_digest: Some("00".into()),
        outcome: Outcome::Ok,
        is_error: false,
        detail: None,
        latency_ms: 3,
        arguments: Some(serde_json::json!({"query": "presto"})),
        proposal: None,
        team: Some("agent-foundations".into()),
        minutes_saved: Some(3.0),
        trace_id: None,
    }
}

/// What the registry's store holds.
async fn audit_in(store: &SqlStore) -> Vec<AuditRecord> {
    store
        .list_audit(&AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn records_wait_in_the_spool_until_the_registry_is_back() {
    records_wait_until_the_registry_is_back(AuditSync::Disk).await;
}

/// Written to the operating system but not waited on to reach the disk: the record is in the
/// journal file all the same when the call is answered.
#[tokio::test(flavor = "multi_thread")]
async fn records_written_to_the_os_wait_in_the_spool_too() {
    records_wait_until_the_registry_is_back(AuditSync::Os).await;
}

async fn records_wait_until_the_registry_is_back(sync: AuditSync) {
    let dir = tempfile::tempdir().unwrap();
    let key = Arc::new(SigningKey::generate().unwrap());
    let mint = {
        let key = key.clone();
        move || {
            key.sign(&Claims::new(
                "urn:test",
                "gateway",
                "switchboard",
                vec!["writers".into()],
                60,
            ))
            .map_err(|e| e.to_string())
        }
    };
    // A port nobody listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = RegistryClient::new(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Mint(Arc::new(mint)),
    );
    let spool = dir.path().join("audit-spool.jsonl");
    let sink = AuditSink::new(client, spool.clone(), sync).unwrap();

    sink.record(record("a")).await;
    sink.record(record("b")).await;
    let spooled = std::fs::read_to_string(&spool).unwrap();
    assert_eq!(spooled.lines().count(), 2, "{spooled}");

    // The registry comes up on that port.
    let store = Arc::new(
        SqlStore::sqlite(&dir.path().join("registry.db"))
            .await
            .unwrap(),
    );
    let verifier = Verifier::new(
        "switchboard",
        vec![TrustedIssuer::new(
            "urn:test",
            KeySource::Static(jwks_document(&[&key])),
        )],
    )
    .unwrap();
    let state = RegistryConfig {
        store: store.clone(),
        verifier,
        writer_groups: vec!["writers".into()],
        auditor_groups: vec![],
        dev_issuer_jwks: None,
        platform_policies: String::new(),
        governance: registry::Governance::new(vec!["platform-admins".into()]),
        publication: registry::Publication::default(),
        ui: Default::default(),
        audit_retention: None,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(registry::run(
        RegistryState::new(state).await.unwrap(),
        listener,
        service_kit::Shutdown::new(),
    ));

    sink.drain().await;
    sink.drain().await; // nothing left: a second drain sends nothing twice
    let stored = audit_in(&store).await;
    let mut ids: Vec<&str> = stored.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a", "b"]);
    assert_eq!(sink.spooled(), 0);
    // What is written later is delivered by the shipper, without waiting for its timer.
    sink.spawn_drain(service_kit::Shutdown::new());
    sink.record(record("c")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    while sink.spooled() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the record stayed in the journal"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let stored = audit_in(&store).await;
    assert_eq!(stored.len(), 3);
}
