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
    let port = unused_port();
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

/// A loopback port nobody listens on (yet).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A sink whose registry is never there: records stay in the journal.
fn sink_without_registry(dir: &std::path::Path, sync: AuditSync) -> AuditSink {
    let port = unused_port();
    let client = RegistryClient::new(
        &format!("http://127.0.0.1:{port}"),
        Credentials::Static("unused".into()),
    );
    AuditSink::new(client, dir.join("audit-spool.jsonl"), sync).unwrap()
}

/// The ids in the journal's files, sorted.
fn journaled(dir: &std::path::Path) -> Vec<String> {
    let mut ids: Vec<String> = ["audit-spool.jsonl", "audit-spool.jsonl.sending"]
        .iter()
        .filter_map(|name| std::fs::read_to_string(dir.join(name)).ok())
        .flat_map(|text| {
            text.lines()
                .map(|line| serde_json::from_str::<AuditRecord>(line).unwrap().id)
                .collect::<Vec<_>>()
        })
        .collect();
    ids.sort();
    ids
}

/// Calls at once share writes (more of them than one write carries), and a caller that goes
/// away before its record is written leaves it to be written all the same: every record is in
/// the journal exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_are_each_journaled_once_even_when_their_callers_go_away() {
    for sync in [AuditSync::Disk, AuditSync::Os] {
        let dir = tempfile::tempdir().unwrap();
        let sink = sink_without_registry(dir.path(), sync);
        let calls: Vec<_> = (0..1_200)
            .map(|i| {
                let sink = sink.clone();
                tokio::spawn(async move {
                    let write = sink.record(record(&format!("{i:05}")));
                    if i % 3 == 0 {
                        // This caller does not wait to hear that its record is stored.
                        let _ = tokio::time::timeout(std::time::Duration::ZERO, write).await;
                    } else {
                        write.await;
                    }
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap();
        }
        let expected: Vec<String> = (0..1_200).map(|i| format!("{i:05}")).collect();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while journaled(dir.path()) != expected {
            assert!(
                std::time::Instant::now() < deadline,
                "{sync:?}: {} of 1200 records journaled",
                journaled(dir.path()).len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(sink.spooled(), 1_200);
    }
}

/// The journal swapped aside for delivery (here the delivery fails: no registry) is not written
/// to again: later records go to the new journal, and the part set aside keeps its own.
#[tokio::test(flavor = "multi_thread")]
async fn records_after_a_swap_go_to_the_new_journal() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink_without_registry(dir.path(), AuditSync::Disk);
    sink.record(record("a")).await;
    sink.drain().await;
    sink.record(record("b")).await;
    let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
    assert!(read("audit-spool.jsonl.sending").contains(r#""id":"a""#));
    assert!(!read("audit-spool.jsonl.sending").contains(r#""id":"b""#));
    assert!(read("audit-spool.jsonl").contains(r#""id":"b""#));
    assert_eq!(sink.spooled(), 2);
    // Removed from under it (an operator cleaning up), the journal is made again.
    std::fs::remove_file(dir.path().join("audit-spool.jsonl")).unwrap();
    sink.record(record("c")).await;
    assert!(read("audit-spool.jsonl").contains(r#""id":"c""#));
}

/// On a runtime of one thread (where no call may block it) records are written all the same.
#[tokio::test(flavor = "current_thread")]
async fn records_are_journaled_on_a_single_threaded_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let sink = sink_without_registry(dir.path(), AuditSync::Disk);
    for id in ["a", "b", "c"] {
        sink.record(record(id)).await;
    }
    assert_eq!(journaled(dir.path()), ["a", "b", "c"]);
}
