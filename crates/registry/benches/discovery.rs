//! Discovery-API throughput with 1,000 servers × 20 tools registered: `GET /v1/discovery` through
//! the real router (token verification, policy decisions per server and tool, JSON response)
//! over a SQLite store, against a baseline measured in the same run: serializing the same
//! catalog to JSON, the floor of any answer that lists it. Run with `cargo bench -p registry`.

use std::{sync::Arc, time::Instant};

use axum::{body::Body, http::Request};
use http_body_util::BodyExt;
use identity::{Claims, KeySource, SigningKey, TrustedIssuer, Verifier, jwks_document};
use registry::{RegistryConfig, RegistryState};
use registry_api::RegisterServer;
use registry_store::{SqlStore, Store};
use serde_json::json;
use tower::ServiceExt;

const SERVERS: usize = 1_000;
const TOOLS: usize = 20;
const ISSUER: &str = "urn:bench";

fn registration(i: usize) -> RegisterServer {
    let tools: serde_json::Map<String, serde_json::Value> = (0..TOOLS)
        .map(|t| {
            let manifest = if t < 4 {
                json!({"minutes_saved": 2, "policy": "leads"})
            } else {
                json!({"minutes_saved": 2})
            };
            (format!("tool{t}"), manifest)
        })
        .collect();
    let definitions: Vec<serde_json::Value> = (0..TOOLS)
        .map(|t| {
            json!({
                "name": format!("tool{t}"),
                "description": format!("Tool {t} of server {i}: looks things up for the team."),
                "inputSchema": {"type": "object", "properties": {"table": {"type": "string"}}},
                "annotations": {"readOnlyHint": t % 2 == 0}
            })
        })
        .collect();
    serde_json::from_value(json!({
        "manifest": {
            "server": {
                "name": format!("server{i}"),
                "description": format!("Server {i}"),
                "owner_team": format!("team{}", i % 40),
                "support_channel": "#help"
            },
            "access": {"allowed_groups": [format!("group{}", i % 10), "everyone"]},
            "policies": {"leads": {"groups": [format!("group{}-leads", i % 10)]}},
            "tools": tools
        },
        "endpoint": format!("http://10.0.{}.{}:8080/mcp", i / 250, i % 250),
        "environment": "prod",
        "tools": definitions
    }))
    .unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(
        SqlStore::sqlite(&dir.path().join("registry.db"))
            .await
            .unwrap(),
    );
    let seeded = Instant::now();
    for t in 0..40 {
        let team = registry_api::Team {
            name: format!("team{t}"),
            title: None,
            owners: vec![format!("owner{t}")],
            member_groups: Vec::new(),
            support_channel: "#help".into(),
            updated_at_ms: 0,
        };
        store.put_team(&team, "bench", 0).await.unwrap();
    }
    for i in 0..SERVERS {
        store
            .upsert_server(&registration(i), "bench", 0)
            .await
            .unwrap();
    }
    // Every server passes its reviews, so discovery answers with all of them.
    let pending = store
        .list_reviews(&registry_store::ReviewFilter {
            limit: 10_000,
            ..Default::default()
        })
        .await
        .unwrap();
    for review in pending {
        store
            .decide_review(&review.id, true, "reviewer", "", 0)
            .await
            .unwrap();
    }
    println!(
        "seeded {SERVERS} servers x {TOOLS} tools in {:.1} s",
        seeded.elapsed().as_secs_f64()
    );
    let key = SigningKey::generate().unwrap();
    let verifier = Verifier::new(
        "switchboard",
        vec![TrustedIssuer::new(
            ISSUER,
            KeySource::Static(jwks_document(&[&key])),
        )],
    )
    .unwrap();
    let state = RegistryState::new(RegistryConfig {
        store: store.clone(),
        verifier,
        writer_groups: vec!["platform-admins".into()],
        auditor_groups: Vec::new(),
        dev_issuer_jwks: None,
        platform_policies: String::new(),
        governance: registry::Governance::new(vec!["platform-admins".into()]),
        publication: registry::Publication::default(),
        ui: Default::default(),
        audit_retention: None,
    })
    .await
    .unwrap();
    let router = registry::router(state);
    let token = |user: &str| {
        key.sign(&Claims::new(
            ISSUER,
            user,
            "switchboard",
            vec!["everyone".into(), "group3-leads".into()],
            3600,
        ))
        .unwrap()
    };
    // Distinct users, so that each request computes its answer (answers are cached per caller).
    let fresh: Vec<String> = (0..64).map(|i| token(&format!("user{i}"))).collect();
    let repeat = token("dana");

    let discover = |token: &str| {
        let request = Request::get("/v1/discovery")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .unwrap();
        let router = router.clone();
        async move {
            let response = router.oneshot(request).await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
            response.into_body().collect().await.unwrap().to_bytes()
        }
    };
    let first = discover(&repeat).await;
    let answer: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let servers = answer["servers"].as_array().unwrap();
    let tools: usize = servers
        .iter()
        .map(|s| s["tools"].as_array().unwrap().len())
        .sum();
    println!(
        "discovery answers {} servers, {tools} tools, {} KiB",
        servers.len(),
        first.len() / 1024
    );
    assert_eq!(servers.len(), SERVERS);

    // Baseline: the same catalog, already in memory, serialized to JSON.
    let catalog = store.list_servers().await.unwrap();
    let baseline = measure(|_| async { serde_json::to_vec(&catalog).unwrap().len() }).await;
    let listing = measure(|_| async { store.list_servers().await.unwrap().len() }).await;
    let computed = measure(|i| discover(&fresh[i % fresh.len()])).await;
    let cached = measure(|_| discover(&repeat)).await;
    println!("baseline (serialize the catalog): {:.2} ms", baseline * 1e3);
    println!(
        "reading the catalog from the store (done on changes, not per request): {:.2} ms, {:.1}x the baseline",
        listing * 1e3,
        listing / baseline
    );
    for (what, secs) in [
        ("a caller's first GET /v1/discovery", computed),
        ("a caller's repeat GET /v1/discovery", cached),
    ] {
        println!(
            "{what}: {:.2} ms, {:.0} requests/s, {:.3}x the baseline",
            secs * 1e3,
            1.0 / secs,
            secs / baseline
        );
    }
}

/// Seconds per run of `f` (given the run's number), over at least two seconds after a warm-up.
async fn measure<F, Fut, T>(f: F) -> f64
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    for i in 0..3 {
        std::hint::black_box(f(i).await);
    }
    let started = Instant::now();
    let mut runs = 0u32;
    while started.elapsed().as_secs_f64() < 2.0 || runs < 5 {
        std::hint::black_box(f(runs as usize + 3).await);
        runs += 1;
    }
    started.elapsed().as_secs_f64() / f64::from(runs)
}
