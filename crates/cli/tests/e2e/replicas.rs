//! Gateway replicas: three gateway processes and one registry on one PostgreSQL, behind a
//! round-robin HTTP balancer on loopback (each request to the next replica; a replica that
//! refuses connections is skipped, as a Kubernetes Service drops a dead pod). Clients of both
//! protocol eras call through it while one replica is killed with SIGKILL: only the calls that
//! replica had in flight may fail. A per-user rate limit holds across the replicas.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::harness::{bin, call, connect, spawn};

struct Balancer {
    backends: std::sync::Mutex<Vec<String>>,
    next: AtomicUsize,
    http: reqwest::Client,
    /// Requests answered by each backend, by index.
    served: Vec<AtomicUsize>,
}

async fn forward(State(lb): State<Arc<Balancer>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body): Result<Bytes, _> = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let backends = lb.backends.lock().unwrap().clone();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    for _ in 0..backends.len() {
        let index = lb.next.fetch_add(1, Ordering::Relaxed) % backends.len();
        let mut upstream = lb
            .http
            .request(parts.method.clone(), format!("{}{path}", backends[index]))
            .body(body.clone());
        for (name, value) in &parts.headers {
            if name != "host" && name != "content-length" {
                upstream = upstream.header(name, value);
            }
        }
        match upstream.send().await {
            Ok(response) => {
                lb.served[index].fetch_add(1, Ordering::Relaxed);
                let mut out = Response::builder().status(response.status());
                for (name, value) in response.headers() {
                    if name != "content-length" && name != "transfer-encoding" {
                        out = out.header(name, value);
                    }
                }
                return out
                    .body(Body::from_stream(response.bytes_stream()))
                    .unwrap();
            }
            // Nothing reached the replica: try the next one.
            Err(e) if e.is_connect() => continue,
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    }
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_of_both_eras_survive_a_gateway_replica_killed_mid_run() {
    let Some(database) = registry_store::testing::fresh_postgres("the gateway replicas test").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let (_registry, ready) = spawn(
        dir.path(),
        "registry",
        &[
            "registry",
            "--listen",
            "127.0.0.1:0",
            "--database",
            &database.url,
            "--dev-issuer",
            "--data-dir",
            data,
        ],
    );
    let registry_url = ready["url"].as_str().unwrap().to_owned();

    // The balancer listens first: the replicas name its address as their public URL and issuer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lb_url = format!("http://{}", listener.local_addr().unwrap());
    let mut gateways = Vec::new();
    let mut backends = Vec::new();
    for i in 0..3 {
        let (process, ready) = spawn(
            dir.path(),
            &format!("gateway-{i}"),
            &[
                "gateway",
                "--listen",
                "127.0.0.1:0",
                "--registry-url",
                &registry_url,
                "--public-url",
                &lb_url,
                "--issuer",
                &lb_url,
                "--dev-issuer",
                "--data-dir",
                data,
                "--catalog-refresh-secs",
                "1",
                "--rate-limit-per-minute",
                "120",
                "--replica-heartbeat-secs",
                "1",
            ],
        );
        gateways.push(process);
        backends.push(ready["url"].as_str().unwrap().to_owned());
    }
    let balancer = Arc::new(Balancer {
        backends: std::sync::Mutex::new(backends),
        next: AtomicUsize::new(0),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        served: (0..3).map(|_| AtomicUsize::new(0)).collect(),
    });
    let app = Router::new().fallback(forward).with_state(balancer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cli = |args: &[&str]| {
        let mut command = std::process::Command::new(bin());
        command.args(args).args(["--data-dir", data]);
        if args[0] != "token" {
            command.args(["--registry-url", &registry_url]);
        }
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    cli(&[
        "teams",
        "put",
        "agent-foundations",
        "--member-groups",
        "agent-foundations",
        "--support-channel",
        "#k",
    ]);
    // The Knowledge server trusts assertions from the balancer's address (the replicas share
    // the key) and registers itself.
    let jwks = format!("{lb_url}/.well-known/jwks.json");
    let (_server, _) = spawn(
        dir.path(),
        "knowledge",
        &[
            "server",
            "knowledge",
            "--listen",
            "127.0.0.1:0",
            "--gateway-jwks",
            &jwks,
            "--gateway-issuer",
            &lb_url,
            "--register-with",
            &registry_url,
            "--dev-issuer",
            "--data-dir",
            data,
        ],
    );
    let reviewer = cli(&[
        "token",
        "--user",
        "rita",
        "--groups",
        "security-reviewers,privacy-reviewers,genai-reviewers",
    ]);
    cli(&[
        "review",
        "approve",
        "--server",
        "knowledge",
        "--token",
        &reviewer,
    ]);
    let token = cli(&["token", "--user", "dev", "--groups", "employees"]);
    let url = format!("{lb_url}/servers/knowledge/mcp");

    // Every replica knows the approved server within its catalog refresh.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let modern = connect(&url, &token, true).await;
        let ok = call(&modern, "search_docs", json!({"query": "presto"}))
            .await
            .is_ok_and(|r| r.is_error == Some(false));
        let _ = modern.cancel().await;
        if ok
            && balancer
                .served
                .iter()
                .all(|s| s.load(Ordering::Relaxed) > 0)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the replicas never served the server"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A legacy session is its opener's on every replica: replayed by someone else, it is refused
    // wherever the request lands.
    let http = reqwest::Client::new();
    let post = |token: &str, session: Option<&str>, body: serde_json::Value| {
        let mut request = http
            .post(&url)
            .bearer_auth(token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-11-25")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let opened = post(
        &token,
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"}}}),
    )
    .await
    .unwrap();
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mallory = cli(&["token", "--user", "mallory", "--groups", "employees"]);
    for _ in 0..3 {
        let replayed = post(
            &mallory,
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await
        .unwrap();
        assert_eq!(replayed.status(), 404);
    }
    post(
        &token,
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        let listed = post(
            &token,
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}),
        )
        .await
        .unwrap();
        assert_eq!(listed.status(), 200);
    }

    // 120 tool calls a minute per user, across the three replicas (each learnt from the
    // registry that there are three, and allows 40).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let hasty = connect(
        &url,
        &cli(&["token", "--user", "hasty", "--groups", "employees"]),
        true,
    )
    .await;
    let (mut allowed, mut limited) = (0, Vec::new());
    let started = std::time::Instant::now();
    for _ in 0..150 {
        match call(&hasty, "search_docs", json!({"query": "presto"})).await {
            Ok(_) => allowed += 1,
            Err(e) => limited.push(e),
        }
    }
    // The buckets refill at 120 a minute, 2 a second, while the calls go on.
    let refilled = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    assert!(
        (118..=122 + refilled).contains(&allowed),
        "{allowed} calls allowed in {:?}",
        started.elapsed()
    );
    assert!(
        limited.iter().all(|e| e.code.0 == -32029
            && e.message
                .starts_with("rate limited: hasty may make 120 tool calls a minute")),
        "{limited:?}"
    );
    let _ = hasty.cancel().await;

    // One client of each era (two users of their own, each well within the limit; `dev` may
    // already have spent much of its minute while the replicas learnt the server, on a loaded
    // machine): the legacy one keeps one session, whose requests land on every replica in turn.
    let modern = Arc::new(
        connect(
            &url,
            &cli(&["token", "--user", "dev3", "--groups", "employees"]),
            true,
        )
        .await,
    );
    let legacy = Arc::new(
        connect(
            &url,
            &cli(&["token", "--user", "dev2", "--groups", "employees"]),
            false,
        )
        .await,
    );
    let run = |client: Arc<rmcp::service::RunningService<rmcp::RoleClient, ()>>| async move {
        let mut outcomes = Vec::new();
        for i in 0..60 {
            let params = rmcp::model::CallToolRequestParams::new("search_docs").with_arguments(
                json!({"query": "spark executor memory"})
                    .as_object()
                    .unwrap()
                    .clone(),
            );
            // A client gives up on a call whose replica died under it (rmcp would wait for
            // the rest of its event stream for ever).
            let outcome =
                match tokio::time::timeout(Duration::from_secs(10), client.call_tool(params)).await
                {
                    Ok(Ok(result)) if result.is_error == Some(false) => Ok(()),
                    Ok(Ok(result)) => Err(format!("tool error: {:?}", result.content)),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("no answer within 10 s".to_owned()),
                };
            outcomes.push((i, outcome));
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        outcomes
    };
    let modern_run = tokio::spawn(run(modern.clone()));
    let legacy_run = tokio::spawn(run(legacy.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    // SIGKILL one replica mid-run.
    let before: Vec<usize> = balancer
        .served
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    gateways[1].kill();
    let modern_outcomes = modern_run.await.unwrap();
    let legacy_outcomes = legacy_run.await.unwrap();
    for (era, outcomes) in [
        ("2026-07-28", &modern_outcomes),
        ("2025-11-25", &legacy_outcomes),
    ] {
        let failed: Vec<(usize, &String)> = outcomes
            .iter()
            .filter_map(|(i, outcome)| outcome.as_ref().err().map(|e| (*i, e)))
            .collect();
        // At most the one call that was in flight on the killed replica fails.
        assert!(failed.len() <= 1, "{era}: calls {failed:?} failed");
        assert!(outcomes.len() == 60, "{era}");
    }
    // The killed replica served nothing after it died (but for a call in flight); the others
    // carried on.
    let after: Vec<usize> = balancer
        .served
        .iter()
        .map(|s| s.load(Ordering::Relaxed))
        .collect();
    assert!(after[1] <= before[1] + 1, "{before:?} {after:?}");
    assert!(
        after[0] > before[0] + 20 && after[2] > before[2] + 20,
        "{before:?} {after:?}"
    );

    // The audit has one record per answered call, whichever replica answered it (the replicas
    // share a data folder, so the live ones deliver what the killed one journaled).
    let live: Vec<String> = balancer.backends.lock().unwrap().clone();
    for (i, url) in live.iter().enumerate() {
        if i != 1 {
            crate::harness::audit_delivered(url);
        }
    }
    let admin = cli(&["token", "--user", "auditor", "--groups", "platform-admins"]);
    let records: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{registry_url}/v1/audit?server=knowledge&limit=1000"
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let answered = modern_outcomes
        .iter()
        .chain(&legacy_outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .count();
    let ok_records = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| (r["user"] == "dev3" || r["user"] == "dev2") && r["outcome"] == "ok")
        .count();
    assert!(
        ok_records >= answered,
        "{ok_records} ok records for {answered} answered calls"
    );
}
