//! The official MCP conformance suite (`@modelcontextprotocol/conformance`) against the SDK-built
//! fixture server, directly and behind the gateway, for both protocol revisions. Pass counts are
//! printed; every failing scenario must be listed with its reason in `conformance/baseline.toml`
//! (and a listed scenario that passes is stale); and the gateway must pass every check the direct
//! server passes.

use std::{collections::BTreeMap, io::Write, path::Path, sync::Arc};

use axum::{
    body::Body,
    extract::{Request, State},
    response::Response,
};
use serde::Deserialize;
use serde_json::Value;

use crate::harness::{Platform, available, node_command, node_tools};

const REVISIONS: [&str; 2] = ["2026-07-28", "2025-11-25"];

#[derive(Deserialize)]
struct Baseline {
    #[serde(default)]
    failure: Vec<Expected>,
}

#[derive(Deserialize)]
struct Expected {
    revision: String,
    scenario: String,
    /// `direct`, `gateway` or `both`.
    target: String,
    reason: String,
}

/// Per scenario, the status of each check.
type Results = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn conformance_suite_direct_and_behind_the_gateway() {
    let Some(bin) = node_tools() else {
        available("node 22 and @modelcontextprotocol/conformance", false);
        return;
    };
    let mut platform = Platform::start();
    let direct_url = format!("{}/mcp", platform.start_conformance_fixture());
    let token = platform.token("conformance-bot", &["employees"]);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let proxy_url = runtime.block_on(start_token_proxy(
        format!("{}/servers/conformance/mcp", platform.gateway_url),
        token,
    ));

    let baseline: Baseline = toml::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../conformance/baseline.toml"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut problems = Vec::new();
    for revision in REVISIONS {
        let mut by_target = BTreeMap::new();
        for (target, url) in [("direct", &direct_url), ("gateway", &proxy_url)] {
            // SWITCHBOARD_CONFORMANCE_OUT keeps the suite's detailed results (checks.json per scenario).
            let root = std::env::var("SWITCHBOARD_CONFORMANCE_OUT")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|_| platform.dir.path().to_owned());
            let out = root.join(format!("conformance-{target}-{revision}"));
            let _ = std::fs::remove_dir_all(&out);
            let results = run_suite(&bin, url, revision, &out);
            let (passed, failed) = count(&results);
            // Written straight to stderr, past the test harness's capture, so CI logs show the counts.
            let _ = writeln!(
                std::io::stderr(),
                "conformance {revision} {target}: {passed} checks passed, {failed} failed"
            );
            for (scenario, checks) in &results {
                let failing: Vec<&String> = checks
                    .iter()
                    .filter(|(_, s)| *s == "FAILURE")
                    .map(|(id, _)| id)
                    .collect();
                let listed = baseline.failure.iter().find(|e| {
                    e.revision == revision
                        && e.scenario == *scenario
                        && (e.target == target || e.target == "both")
                });
                match (failing.is_empty(), listed) {
                    (false, None) => problems.push(format!("{revision} {target}: {scenario} fails ({failing:?}) and is not in the baseline")),
                    (false, Some(e)) if e.reason.trim().is_empty() => problems.push(format!("{revision} {scenario}: baseline entry has no reason")),
                    (true, Some(_)) => problems.push(format!("{revision} {target}: {scenario} passes now; remove it from the baseline")),
                    _ => {}
                }
            }
            by_target.insert(target, results);
        }
        // The gateway must not lose checks that the direct server passes.
        for (scenario, checks) in &by_target["direct"] {
            for (check, status) in checks {
                let via_gateway = by_target["gateway"]
                    .get(scenario)
                    .and_then(|c| c.get(check));
                if status == "SUCCESS" && via_gateway.map(String::as_str) != Some("SUCCESS") {
                    problems.push(format!(
                        "{revision}: the gateway loses {scenario}/{check} ({via_gateway:?})"
                    ));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "conformance problems:\n{}",
        problems.join("\n")
    );
}

fn run_suite(bin: &Path, url: &str, revision: &str, out: &Path) -> Results {
    let output = node_command(bin, "conformance")
        .args(["server", "--url", url, "--requirements", revision, "-o"])
        .arg(out)
        .output()
        .unwrap();
    // The suite exits non-zero when scenarios fail; the baseline decides what is acceptable.
    let mut results = Results::new();
    let entries = std::fs::read_dir(out).unwrap_or_else(|e| {
        panic!(
            "no results in {} ({e}): {}",
            out.display(),
            String::from_utf8_lossy(&output.stdout)
        )
    });
    for entry in entries {
        let path = entry.unwrap().path();
        let folder = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(rest) = folder.strip_prefix("server-") else {
            continue;
        };
        let scenario = scenario_name(rest);
        let Ok(text) = std::fs::read_to_string(path.join("checks.json")) else {
            continue;
        };
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        let statuses = results.entry(scenario).or_default();
        for check in checks {
            statuses.insert(
                check["id"].as_str().unwrap().to_owned(),
                check["status"].as_str().unwrap().to_owned(),
            );
        }
    }
    assert!(
        !results.is_empty(),
        "the suite produced no results: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    results
}

/// `<scenario>-<YYYY-MM-DDTHH-MM-SS-mmmZ>` → `<scenario>`.
fn scenario_name(folder: &str) -> String {
    let bytes = folder.as_bytes();
    for (i, _) in folder.match_indices('-') {
        let rest = &bytes[i + 1..];
        let is_stamp = rest.len() >= 11
            && rest[..4].iter().all(u8::is_ascii_digit)
            && rest[4] == b'-'
            && rest[7] == b'-'
            && rest[10] == b'T';
        if is_stamp {
            return folder[..i].to_owned();
        }
    }
    folder.to_owned()
}

fn count(results: &Results) -> (usize, usize) {
    let statuses: Vec<&String> = results.values().flat_map(|c| c.values()).collect();
    let passed = statuses.iter().filter(|s| **s == "SUCCESS").count();
    let failed = statuses.iter().filter(|s| **s == "FAILURE").count();
    (passed, failed)
}

struct ProxyState {
    target: String,
    token: String,
    http: reqwest::Client,
}

/// The conformance suite cannot send a bearer token, so it talks to this loopback proxy, which adds
/// one and forwards everything else (Host and Origin included) to the gateway route unchanged.
async fn start_token_proxy(target: String, token: String) -> String {
    let state = Arc::new(ProxyState {
        target,
        token,
        http: reqwest::Client::new(),
    });
    let app = axum::Router::new().fallback(forward).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/mcp")
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20).await.unwrap();
    let mut upstream = state
        .http
        .request(parts.method, &state.target)
        .bearer_auth(&state.token)
        .body(body);
    for (name, value) in &parts.headers {
        if name != "content-length" && name != "authorization" {
            upstream = upstream.header(name, value);
        }
    }
    let response = upstream.send().await.unwrap();
    let mut out = Response::builder().status(response.status());
    for (name, value) in response.headers() {
        if name != "content-length" && name != "transfer-encoding" {
            out = out.header(name, value);
        }
    }
    out.body(Body::from_stream(response.bytes_stream()))
        .unwrap()
}
