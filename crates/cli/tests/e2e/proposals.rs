//! Humans in the loop through the gateway: a destructive call becomes a proposal instead of
//! running; the agent follows it up with `switchboard_proposal`; once a person approves it (one
//! at a time or a batch of 20 with one command) the first follow-up runs it exactly once, as the
//! original caller, and every later one returns the same result; a rejection reaches the agent as
//! an error with the approver's reason.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use rmcp::{
    ErrorData, RoleServer, ServerHandler,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
        PaginatedRequestParams, ProtocolVersion, ServerConfig, Tool, ToolAnnotations,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

use crate::harness::{Platform, call, connect, python_agent, python_output, serve_sdk};

const MANIFEST: &str = r##"
[server]
name = "payouts"
description = "Issue customer refunds"
owner_team = "finance-eng"
support_channel = "#payouts"

[tools.issue_refund]
minutes_saved = 6.0
approval = "group:refund-approvers"
"##;

/// Issues refunds, counting how many really ran and as whom. A refund is issued at the end of
/// its (optionally slow) work, and keyed calls run once ([`server_sdk::Idempotency`]).
#[derive(Clone)]
struct Payouts {
    issued: Arc<AtomicUsize>,
    started: Arc<AtomicUsize>,
    callers: Arc<std::sync::Mutex<Vec<String>>>,
    info: ServerConfig,
    work: std::time::Duration,
    idempotency: server_sdk::Idempotency,
}

impl Payouts {
    fn new(manifest: &catalog::Manifest, work: std::time::Duration) -> Payouts {
        Payouts {
            issued: Arc::default(),
            started: Arc::default(),
            callers: Arc::default(),
            info: server_sdk::server_info(manifest),
            work,
            idempotency: server_sdk::Idempotency::default(),
        }
    }
}

fn refund_tool() -> Tool {
    let Value::Object(schema) = json!({
        "type": "object",
        "properties": {"id": {"type": "string", "maxLength": 32}},
        "required": ["id"],
        "additionalProperties": false
    }) else {
        unreachable!()
    };
    Tool::new(
        "issue_refund",
        "Issues a refund to the customer's card.",
        schema,
    )
    .with_annotations(ToolAnnotations::new().read_only(false).destructive(true))
}

impl ServerHandler for Payouts {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![refund_tool()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let key = server_sdk::Idempotency::key(&context);
        let caller = server_sdk::caller_of(&context)
            .map(|c| c.user)
            .unwrap_or_default();
        let id = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("id"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let this = self.clone();
        self.idempotency
            .once(key, async move {
                this.started.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(this.work).await;
                this.callers.lock().unwrap().push(caller);
                let n = this.issued.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(CallToolResult::success(vec![ContentBlock::text(format!(
                    "refund {id} issued (#{n})"
                ))])
                .into())
            })
            .await
    }
}

/// The Payouts server (whose work takes `work`) on `platform`, registered with the CLI and
/// approved for production; returns the platform, the server and its gateway route.
async fn payouts_platform(
    platform: Platform,
    work: std::time::Duration,
) -> (Platform, Payouts, String) {
    let manifest = catalog::Manifest::parse(MANIFEST).unwrap();
    let payouts = Payouts::new(&manifest, work);
    let endpoint = serve_sdk(&platform.gateway_url, manifest, payouts.clone()).await;
    platform.register(MANIFEST, &endpoint, &json!([refund_tool()]));
    platform.approve("payouts");
    let url = format!("{}/servers/payouts/mcp", platform.gateway_url);
    (platform, payouts, url)
}

fn text(result: &CallToolResult) -> String {
    serde_json::to_value(&result.content).unwrap().to_string()
}

fn proposal_of(result: &CallToolResult) -> String {
    let value = serde_json::to_value(result).unwrap();
    value["_meta"]["dev.switchboard/proposal"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no proposal in {value}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_calls_run_once_as_their_caller_and_rejections_reach_the_agent() {
    let (platform, payouts, url) = payouts_platform(
        Platform::start_with(&["--approval-wait-secs", "0"]),
        std::time::Duration::ZERO,
    )
    .await;
    let developer = platform.token("dev", &["employees"]);
    let approver = platform.token("ava", &["refund-approvers"]);

    let agent = connect(&url, &developer, true).await;
    // The gateway adds its follow-up tool to a server whose calls can need approval.
    let mut tools: Vec<String> = agent
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    tools.sort();
    assert_eq!(tools, ["issue_refund", "switchboard_proposal"]);

    // The call does not run: it becomes a proposal.
    let pending = call(&agent, "issue_refund", json!({"id": "r-1"}))
        .await
        .unwrap();
    assert_eq!(pending.is_error, Some(false));
    assert!(
        text(&pending).contains("needs approval by group:refund-approvers"),
        "{}",
        text(&pending)
    );
    let first = proposal_of(&pending);
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 0);
    let still = call(&agent, "switchboard_proposal", json!({"id": first}))
        .await
        .unwrap();
    assert!(
        text(&still).contains("waiting for a person"),
        "{}",
        text(&still)
    );

    // Someone else cannot follow it up, nor approve it.
    let other = connect(&url, &platform.token("mallory", &["employees"]), true).await;
    let hidden = call(&other, "switchboard_proposal", json!({"id": first}))
        .await
        .unwrap_err();
    assert!(hidden.message.contains("no proposal"), "{}", hidden.message);
    let (code, _) = platform.cli(&["approvals", "approve", &first, "--token", &developer]);
    assert_ne!(
        code, 0,
        "the requester approved a call that needs the refund approvers"
    );

    // Approved: the first follow-up runs it, as the developer; later ones return the same result.
    let (code, out) = platform.cli(&[
        "approvals",
        "approve",
        &first,
        "--comment",
        "ok",
        "--token",
        &approver,
    ]);
    assert_eq!(code, 0, "{out}");
    let ran = call(&agent, "switchboard_proposal", json!({"id": first}))
        .await
        .unwrap();
    assert!(
        text(&ran).contains("refund r-1 issued (#1)"),
        "{}",
        text(&ran)
    );
    let again = call(&agent, "switchboard_proposal", json!({"id": first}))
        .await
        .unwrap();
    assert_eq!(text(&again), text(&ran));
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 1);
    assert_eq!(payouts.callers.lock().unwrap().as_slice(), ["dev"]);

    // A batch of 20, approved with one command.
    let mut batch = Vec::new();
    for i in 0..20 {
        let pending = call(&agent, "issue_refund", json!({"id": format!("b-{i}")}))
            .await
            .unwrap();
        batch.push(proposal_of(&pending));
    }
    let (code, out) = platform.cli(&[
        "approvals",
        "approve",
        "--server",
        "payouts",
        "--comment",
        "month-end batch",
        "--token",
        &approver,
    ]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("approved ")).count(),
        20,
        "{out}"
    );
    for id in &batch {
        let ran = call(&agent, "switchboard_proposal", json!({"id": id}))
            .await
            .unwrap();
        assert!(text(&ran).contains("issued"), "{}", text(&ran));
    }
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 21);

    // A rejection reaches the agent as an error carrying the reason; nothing runs.
    let pending = call(&agent, "issue_refund", json!({"id": "r-99"}))
        .await
        .unwrap();
    let rejected = proposal_of(&pending);
    let (code, out) = platform.cli(&[
        "approvals",
        "reject",
        &rejected,
        "--comment",
        "duplicate of r-1",
        "--token",
        &approver,
    ]);
    assert_eq!(code, 0, "{out}");
    let refused = call(&agent, "switchboard_proposal", json!({"id": rejected}))
        .await
        .unwrap_err();
    assert_eq!(refused.code.0, -32003);
    assert!(
        refused
            .message
            .contains("ava rejected the call to issue_refund"),
        "{}",
        refused.message
    );
    assert!(
        refused.message.contains("duplicate of r-1"),
        "{}",
        refused.message
    );
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 21);
    agent.cancel().await.unwrap();
    other.cancel().await.unwrap();

    // The audit shows the proposals and the approved runs.
    let records = platform.audit("payouts");
    assert_eq!(
        records
            .iter()
            .filter(|r| r["outcome"] == "pending_approval")
            .count(),
        22
    );
    assert_eq!(
        records
            .iter()
            .filter(|r| r["outcome"] == "ok" && r["tool"] == "issue_refund" && r["user"] == "dev")
            .count(),
        21
    );
}

/// People decide in the browser: an approver rejects one proposal with a reason and approves the
/// rest in one action in the inbox (headless Chromium); the agents' follow-ups (one on the
/// official Python SDK) then run the approved calls once each and report the rejection.
#[tokio::test(flavor = "multi_thread")]
async fn an_approver_decides_proposals_in_the_browser_inbox() {
    if !crate::ui::browser_available() {
        return;
    }
    let (platform, payouts, url) = payouts_platform(
        Platform::start_with(&["--approval-wait-secs", "0"]),
        std::time::Duration::ZERO,
    )
    .await;
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    // The oldest proposal comes from an agent on the official Python SDK (the inbox lists newest
    // first, so it is among those approved in one action).
    let token = platform.token("dev", &["employees"]);
    let python_call = |tool: &str, args: Value| {
        python_output(
            python_agent(&python, &url, "2026-07-28", &token, tool, &args, None)
                .output()
                .unwrap(),
        )
    };
    let proposed = python_call("issue_refund", json!({"id": "py-w"}));
    let from_python = proposed["text"][0]
        .as_str()
        .and_then(|t| t.split("Proposal ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("{proposed}"))
        .to_owned();
    let agent = connect(&url, &token, false).await;
    let mut proposals = vec![from_python.clone()];
    for i in 0..4 {
        let pending = call(&agent, "issue_refund", json!({"id": format!("w-{i}")}))
            .await
            .unwrap();
        proposals.push(proposal_of(&pending));
    }

    let shots = crate::ui::screenshots("approvals");
    let seen = crate::ui::run_browser(
        "ui-approvals.mjs",
        &[
            platform.registry_url.as_ref(),
            shots.as_os_str(),
            "ava".as_ref(),
            "employees, refund-approvers".as_ref(),
        ],
    );
    assert_eq!(seen["shown"], 5, "{seen}");
    assert_eq!(seen["firstNotice"], "Done: 1 rejected", "{seen}");
    assert_eq!(seen["left"], 4, "{seen}");
    assert_eq!(seen["secondNotice"], "Done: 4 approved", "{seen}");
    assert_eq!(seen["empty"], true, "{seen}");

    let rejected = seen["rejectedId"].as_str().unwrap();
    assert_ne!(rejected, from_python);
    // The Python agent gets its result: approved in the browser, run once.
    let ran = python_call("switchboard_proposal", json!({"id": from_python}));
    assert_eq!(ran["is_error"], false, "{ran}");
    assert!(
        ran["text"][0]
            .as_str()
            .unwrap()
            .contains("refund py-w issued"),
        "{ran}"
    );
    for id in &proposals[1..] {
        let followed = call(&agent, "switchboard_proposal", json!({"id": id})).await;
        if id == rejected {
            let refused = followed.unwrap_err();
            assert!(
                refused.message.contains("Not this one: duplicate"),
                "{}",
                refused.message
            );
        } else {
            assert!(text(&followed.unwrap()).contains("issued"));
        }
    }
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 4);
    agent.cancel().await.unwrap();
}

/// An agent on the official Python SDK, in both eras: its destructive call becomes a proposal,
/// a person approves it, and its follow-up runs the call once and gets the result.
#[tokio::test(flavor = "multi_thread")]
async fn a_python_sdk_agent_proposes_and_gets_the_result_once_approved() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let (platform, payouts, url) = payouts_platform(
        Platform::start_with(&["--approval-wait-secs", "0"]),
        std::time::Duration::ZERO,
    )
    .await;
    let token = platform.token("pia", &["employees"]);
    let approver = platform.token("ava", &["refund-approvers"]);
    let run = |mode: &str, tool: &str, args: Value| {
        python_output(
            python_agent(&python, &url, mode, &token, tool, &args, None)
                .output()
                .unwrap(),
        )
    };
    for (i, mode) in ["2026-07-28", "legacy"].into_iter().enumerate() {
        let proposed = run(mode, "issue_refund", json!({"id": format!("py-{i}")}));
        assert_eq!(
            proposed["tools"],
            json!(["issue_refund", "switchboard_proposal"]),
            "{proposed}"
        );
        let text = proposed["text"][0].as_str().unwrap();
        assert!(text.contains("needs approval"), "{proposed}");
        let id = text
            .split("Proposal ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        let (code, out) = platform.cli(&["approvals", "approve", &id, "--token", &approver]);
        assert_eq!(code, 0, "{out}");
        let ran = run(mode, "switchboard_proposal", json!({"id": id}));
        assert_eq!(ran["is_error"], false, "{ran}");
        assert!(
            ran["text"][0]
                .as_str()
                .unwrap()
                .contains(&format!("refund py-{i} issued")),
            "{ran}"
        );
    }
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 2);
    assert_eq!(payouts.callers.lock().unwrap().as_slice(), ["pia", "pia"]);
}

/// A gateway killed with SIGKILL after an approval, before and while running the call, comes back
/// and the call runs exactly once: the proposal lives in the registry, a dead gateway's claim is
/// taken over after its lease, and the server dedupes the re-run by the proposal id.
#[tokio::test(flavor = "multi_thread")]
async fn an_approved_call_runs_exactly_once_across_gateway_crashes() {
    let (mut platform, payouts, url) = payouts_platform(
        Platform::start_on_fixed_ports(&[
            "--proposal-claim-lease-secs",
            "1",
            "--approval-wait-secs",
            "0",
        ]),
        std::time::Duration::from_millis(1500),
    )
    .await;
    let token = platform.token("dev", &["employees"]);
    let approver = platform.token("ava", &["refund-approvers"]);

    for round in 0..3 {
        let agent = connect(&url, &token, true).await;
        let pending = call(&agent, "issue_refund", json!({"id": format!("c-{round}")}))
            .await
            .unwrap();
        let id = proposal_of(&pending);
        let (code, out) = platform.cli(&["approvals", "approve", &id, "--token", &approver]);
        assert_eq!(code, 0, "{out}");
        if round == 0 {
            // Killed between the approval and the run.
            drop(agent);
            platform.crash_and_restart();
        } else {
            // Killed while running it: the follow-up is in flight when the gateway dies.
            let started = payouts.started.load(Ordering::SeqCst);
            let follow = {
                let id = id.clone();
                tokio::spawn(async move {
                    let _ = call(&agent, "switchboard_proposal", json!({"id": id})).await;
                })
            };
            while payouts.started.load(Ordering::SeqCst) == started {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            platform.crash_and_restart();
            follow.abort();
        }
        // After the restart the agent follows up until the call has run.
        let agent = connect(&url, &token, true).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let result = loop {
            let followed = call(&agent, "switchboard_proposal", json!({"id": id}))
                .await
                .unwrap();
            if text(&followed).contains("issued") {
                break followed;
            }
            assert!(std::time::Instant::now() < deadline, "{}", text(&followed));
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        };
        assert!(
            text(&result).contains(&format!("refund c-{round} issued")),
            "{}",
            text(&result)
        );
        agent.cancel().await.unwrap();
        assert_eq!(
            payouts.issued.load(Ordering::SeqCst),
            round + 1,
            "round {round} issued the refund more than once"
        );
    }
}

/// Waits for the first pending proposal on `payouts` and decides it with the CLI.
async fn decide_when_proposed(
    platform: &Platform,
    approver: &str,
    approve: bool,
    after: std::time::Duration,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let id = loop {
        let (code, out) = platform.cli(&[
            "approvals",
            "list",
            "--server",
            "payouts",
            "--token",
            approver,
        ]);
        assert_eq!(code, 0, "{out}");
        if let Some(id) = out.lines().nth(1).and_then(|l| l.split_whitespace().next()) {
            break id.to_owned();
        }
        assert!(std::time::Instant::now() < deadline, "no proposal appeared");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    tokio::time::sleep(after).await;
    let (code, out) = if approve {
        platform.cli(&["approvals", "approve", &id, "--token", approver])
    } else {
        platform.cli(&[
            "approvals",
            "reject",
            &id,
            "--comment",
            "over the limit",
            "--token",
            approver,
        ])
    };
    assert_eq!(code, 0, "{out}");
    id
}

/// A call that needs approval holds on while a person decides: approved meanwhile, the agent gets
/// the result in the same call (with progress while it waited, when it asked for progress);
/// rejected meanwhile, an error with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn a_call_waits_for_its_approval_with_progress() {
    let (platform, payouts, url) = payouts_platform(
        Platform::start_with(&["--approval-wait-secs", "15"]),
        std::time::Duration::ZERO,
    )
    .await;
    let token = platform.token("dev", &["employees"]);
    let approver = platform.token("ava", &["refund-approvers"]);

    // With a progress token, over an event stream (2026-07-28, one request).
    let request = reqwest::Client::new()
        .post(&url)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "issue_refund")
        .json(&json!({
            "jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "issue_refund", "arguments": {"id": "s-1"},
                       "_meta": {"progressToken": "tok-1"}}
        }))
        .send();
    let (response, _) = tokio::join!(
        request,
        decide_when_proposed(
            &platform,
            &approver,
            true,
            std::time::Duration::from_millis(2600)
        )
    );
    let response = response.unwrap();
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.unwrap();
    let messages: Vec<Value> = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let progress: Vec<&Value> = messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert!(!progress.is_empty(), "{body}");
    assert_eq!(progress[0]["params"]["progressToken"], "tok-1");
    assert!(
        progress[0]["params"]["message"]
            .as_str()
            .unwrap()
            .contains("waiting for approval by group:refund-approvers")
    );
    let last = messages.last().unwrap();
    assert_eq!(last["id"], 7, "{body}");
    assert!(
        last["result"]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("refund s-1 issued"),
        "{body}"
    );

    // Without one, the plain response comes once decided; a rejection is an error.
    let agent = connect(&url, &token, false).await;
    let (ran, _) = tokio::join!(
        call(&agent, "issue_refund", json!({"id": "s-2"})),
        decide_when_proposed(&platform, &approver, true, std::time::Duration::ZERO)
    );
    assert!(text(&ran.unwrap()).contains("refund s-2 issued"));
    let (refused, _) = tokio::join!(
        call(&agent, "issue_refund", json!({"id": "s-3"})),
        decide_when_proposed(&platform, &approver, false, std::time::Duration::ZERO)
    );
    let refused = refused.unwrap_err();
    assert!(
        refused.message.contains("over the limit"),
        "{}",
        refused.message
    );
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 2);
    agent.cancel().await.unwrap();
}

/// Scale-out: two registry replicas on one PostgreSQL and a gateway on replica B. A call waits
/// for approval on that gateway; the approval, recorded through replica A, wakes it within a
/// second.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_through_one_registry_replica_wakes_a_call_waiting_on_another() {
    use crate::harness::spawn;
    let Some(database) = registry_store::testing::fresh_postgres("the replicas test").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let registry = |name: &str| {
        spawn(
            dir.path(),
            name,
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
        )
    };
    let (_a, ready_a) = registry("registry-a");
    let (_b, ready_b) = registry("registry-b");
    let url_a = ready_a["url"].as_str().unwrap().to_owned();
    let url_b = ready_b["url"].as_str().unwrap().to_owned();
    let (_gateway, ready) = spawn(
        dir.path(),
        "gateway",
        &[
            "gateway",
            "--listen",
            "127.0.0.1:0",
            "--registry-url",
            &url_b,
            "--dev-issuer",
            "--data-dir",
            data,
            "--approval-wait-secs",
            "20",
            "--catalog-refresh-secs",
            "1",
        ],
    );
    let gateway_url = ready["url"].as_str().unwrap().to_owned();
    let cli = |registry: &str, args: &[&str]| {
        let out = std::process::Command::new(crate::harness::bin())
            .args(args)
            .args(["--registry-url", registry, "--data-dir", data])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let token = |user: &str, groups: &str| {
        let out = std::process::Command::new(crate::harness::bin())
            .args([
                "token",
                "--user",
                user,
                "--groups",
                groups,
                "--data-dir",
                data,
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    cli(
        &url_a,
        &[
            "teams",
            "put",
            "finance-eng",
            "--member-groups",
            "finance-eng",
            "--support-channel",
            "#f",
        ],
    );
    let manifest = catalog::Manifest::parse(MANIFEST).unwrap();
    let payouts = Payouts::new(&manifest, std::time::Duration::ZERO);
    let endpoint = serve_sdk(&gateway_url, manifest, payouts.clone()).await;
    std::fs::write(dir.path().join("payouts.toml"), MANIFEST).unwrap();
    std::fs::write(
        dir.path().join("tools.json"),
        json!([refund_tool()]).to_string(),
    )
    .unwrap();
    cli(
        &url_a,
        &[
            "servers",
            "register",
            "--manifest",
            dir.path().join("payouts.toml").to_str().unwrap(),
            "--endpoint",
            &endpoint,
            "--tools",
            dir.path().join("tools.json").to_str().unwrap(),
        ],
    );
    let reviewer = token(
        "rita",
        "security-reviewers,privacy-reviewers,genai-reviewers",
    );
    cli(
        &url_a,
        &[
            "review", "approve", "--server", "payouts", "--token", &reviewer,
        ],
    );

    let agent_token = token("dev", "employees");
    let approver = token("ava", "refund-approvers");
    let url = format!("{gateway_url}/servers/payouts/mcp");
    // Replica B sees the approved server within its catalog check, the gateway within its refresh.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !cli(&url_b, &["servers", "list"])
        .lines()
        .any(|l| l.starts_with("payouts ") && l.contains(" yes "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "replica B never saw the server"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let agent = loop {
        let agent = connect(&url, &agent_token, true).await;
        if agent
            .list_all_tools()
            .await
            .map(|t| !t.is_empty())
            .unwrap_or(false)
        {
            break agent;
        }
        agent.cancel().await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let waiting = tokio::spawn(async move {
        let result = call(&agent, "issue_refund", json!({"id": "x-1"})).await;
        (std::time::Instant::now(), result)
    });
    // Decide through replica A once the proposal is there.
    let id = loop {
        let listed = cli(&url_a, &["approvals", "list", "--token", &approver]);
        if let Some(id) = listed
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().next())
        {
            break id.to_owned();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    cli(&url_a, &["approvals", "approve", &id, "--token", &approver]);
    let approved_at = std::time::Instant::now();
    let (answered_at, result) = waiting.await.unwrap();
    assert!(text(&result.unwrap()).contains("refund x-1 issued"));
    let latency = answered_at.saturating_duration_since(approved_at);
    assert!(
        latency < std::time::Duration::from_secs(1),
        "woke after {latency:?}"
    );
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 1);
}

const WAREHOUSE: &str = r##"
[server]
name = "warehouse"
description = "Manage warehouse tables"
owner_team = "finance-eng"
support_channel = "#warehouse"

[tools.overwrite_table]
minutes_saved = 3.0
approval = "none"
"##;

/// Overwrites tables, once the user confirmed it from inside the tool.
#[derive(Clone)]
struct Warehouse {
    overwritten: Arc<AtomicUsize>,
    info: ServerConfig,
}

fn overwrite_tool() -> Tool {
    let Value::Object(schema) = json!({
        "type": "object",
        "properties": {"table": {"type": "string", "maxLength": 64}},
        "required": ["table"],
        "additionalProperties": false
    }) else {
        unreachable!()
    };
    Tool::new("overwrite_table", "Replaces a table's contents.", schema)
        .with_annotations(ToolAnnotations::new().read_only(false).destructive(false))
}

impl ServerHandler for Warehouse {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(vec![overwrite_tool()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let table = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("table"))
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        let question = format!("Overwrite table {table}, 1.2M rows?");
        let text = match server_sdk::confirm(&context, request.input_responses.as_ref(), &question)
            .await?
        {
            server_sdk::Confirmation::Ask(response) => return Ok(*response),
            server_sdk::Confirmation::Declined => format!("left {table} as it was"),
            server_sdk::Confirmation::Confirmed => {
                self.overwritten.fetch_add(1, Ordering::SeqCst);
                format!("overwrote {table}")
            }
        };
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
    }
}

/// A tool confirms a dangerous action with the user, through the gateway, with the official Python
/// SDK in both eras: accepted, it acts; declined, it does not; for a client that cannot ask, the
/// confirmation becomes a proposal the requester approves, and then it acts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_tool_confirms_a_dangerous_action_with_the_user_in_both_eras() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let (platform, warehouse, url) = warehouse_platform(false).await;
    let token = platform.token("dev", &["employees"]);
    let table = json!({"table": "ads.daily_spend"});
    let run = |mode: &str, answer: Option<&str>| {
        python_output(
            python_agent(
                &python,
                &url,
                mode,
                &token,
                "overwrite_table",
                &table,
                answer,
            )
            .output()
            .unwrap(),
        )
    };
    let mut expected = 0;
    for mode in ["2026-07-28", "legacy"] {
        let yes = run(mode, Some("accept"));
        assert_eq!(yes["text"][0], "overwrote ads.daily_spend", "{mode}: {yes}");
        assert_eq!(
            yes["asked"],
            json!(["Overwrite table ads.daily_spend, 1.2M rows?"]),
            "{yes}"
        );
        expected += 1;
        let no = run(mode, Some("decline"));
        assert_eq!(
            no["text"][0], "left ads.daily_spend as it was",
            "{mode}: {no}"
        );
        assert_eq!(
            warehouse.overwritten.load(Ordering::SeqCst),
            expected,
            "{mode}"
        );

        // A client that cannot ask: the gateway turns the confirmation into a proposal the
        // requester approves; the approved call arrives confirmed and acts once.
        let unable = run(mode, None);
        let text = unable["text"][0].as_str().unwrap_or_default();
        assert!(text.contains("needs approval by self"), "{mode}: {unable}");
        assert_eq!(
            warehouse.overwritten.load(Ordering::SeqCst),
            expected,
            "{mode}"
        );
        let id = text
            .split("Proposal ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        let (code, out) = platform.cli(&["approvals", "list", "--token", &token]);
        assert!(code == 0 && out.contains(&id), "{out}");
        let (code, out) = platform.cli(&["approvals", "approve", &id, "--token", &token]);
        assert_eq!(code, 0, "{out}");
        let follow = json!({"id": id});
        let ran = python_output(
            python_agent(
                &python,
                &url,
                mode,
                &token,
                "switchboard_proposal",
                &follow,
                None,
            )
            .output()
            .unwrap(),
        );
        assert_eq!(ran["text"][0], "overwrote ads.daily_spend", "{mode}: {ran}");
        expected += 1;
        assert_eq!(
            warehouse.overwritten.load(Ordering::SeqCst),
            expected,
            "{mode}"
        );
    }
}

/// The same warehouse as a server that speaks only 2026-07-28: it has no `initialize`.
#[derive(Clone)]
struct ModernOnly(Warehouse);

impl ServerHandler for ModernOnly {
    fn get_info(&self) -> ServerConfig {
        self.0.get_info()
    }

    fn supported_protocol_versions(&self) -> std::borrow::Cow<'static, [ProtocolVersion]> {
        std::borrow::Cow::Owned(vec![ProtocolVersion::V_2026_07_28])
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.0.list_tools(request, context).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.0.call_tool(request, context).await
    }
}

/// A platform with the warehouse server (speaking only 2026-07-28 when `modern_only`) registered
/// and approved; returns the platform, the server and its gateway route.
async fn warehouse_platform(modern_only: bool) -> (Platform, Warehouse, String) {
    let platform = Platform::start();
    let manifest = catalog::Manifest::parse(WAREHOUSE).unwrap();
    let warehouse = Warehouse {
        overwritten: Arc::default(),
        info: server_sdk::server_info(&manifest),
    };
    let endpoint = if modern_only {
        serve_sdk(
            &platform.gateway_url,
            manifest,
            ModernOnly(warehouse.clone()),
        )
        .await
    } else {
        serve_sdk(&platform.gateway_url, manifest, warehouse.clone()).await
    };
    platform.register(WAREHOUSE, &endpoint, &json!([overwrite_tool()]));
    platform.approve("warehouse");
    let url = format!("{}/servers/warehouse/mcp", platform.gateway_url);
    (platform, warehouse, url)
}

/// Between eras: a legacy (2025-11-25) client and a server that speaks only 2026-07-28. The
/// server refuses the legacy handshake, so the gateway answers it and bridges the session; the
/// tool's `input_required` confirmation reaches the official Python SDK's legacy client as an
/// `elicitation/create` request, its answer goes back to the server as `inputResponses`, and a
/// client that cannot elicit gets a proposal instead.
#[tokio::test(flavor = "multi_thread")]
async fn a_legacy_client_confirms_with_a_server_that_speaks_only_the_new_era() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let (platform, warehouse, url) = warehouse_platform(true).await;
    let token = platform.token("dev", &["employees"]);

    // The handshake is the gateway's: a session id it signed, the client's own version.
    let http = reqwest::Client::new();
    let initialize = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "raw", "version": "1"}}});
    let opened = http
        .post(&url)
        .bearer_auth(&token)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(session.starts_with("switchboard-bridge."), "{session}");
    let body: Value = opened.json().await.unwrap();
    assert_eq!(body["result"]["protocolVersion"], "2025-06-18", "{body}");
    assert_eq!(body["result"]["serverInfo"]["name"], "warehouse", "{body}");
    // Nobody else can ride it, and a forged one is refused.
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let other = platform.token("mallory", &["employees"]);
    for (who, id) in [(&other, session.clone()), (&token, format!("{session}x"))] {
        let refused = http
            .post(&url)
            .bearer_auth(who)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-session-id", id)
            .header("mcp-protocol-version", "2025-06-18")
            .json(&list)
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 404);
    }

    let table = json!({"table": "ads.daily_spend"});
    let run = |answer: Option<&str>| {
        python_output(
            python_agent(
                &python,
                &url,
                "legacy",
                &token,
                "overwrite_table",
                &table,
                answer,
            )
            .output()
            .unwrap(),
        )
    };
    let yes = run(Some("accept"));
    assert_eq!(yes["protocol_version"], "2025-11-25", "{yes}");
    assert_eq!(yes["tools"], json!(["overwrite_table"]), "{yes}");
    assert_eq!(yes["text"][0], "overwrote ads.daily_spend", "{yes}");
    assert_eq!(
        yes["asked"],
        json!(["Overwrite table ads.daily_spend, 1.2M rows?"]),
        "{yes}"
    );
    assert_eq!(warehouse.overwritten.load(Ordering::SeqCst), 1);
    let no = run(Some("decline"));
    assert_eq!(no["text"][0], "left ads.daily_spend as it was", "{no}");
    assert_eq!(warehouse.overwritten.load(Ordering::SeqCst), 1);

    // A legacy client that cannot elicit: the confirmation becomes a proposal.
    let unable = run(None);
    let text = unable["text"][0].as_str().unwrap_or_default();
    assert!(text.contains("needs approval by self"), "{unable}");
    let id = text
        .split("Proposal ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let (code, out) = platform.cli(&["approvals", "approve", &id, "--token", &token]);
    assert_eq!(code, 0, "{out}");
    let ran = python_output(
        python_agent(
            &python,
            &url,
            "legacy",
            &token,
            "switchboard_proposal",
            &json!({"id": id}),
            None,
        )
        .output()
        .unwrap(),
    );
    assert_eq!(ran["text"][0], "overwrote ads.daily_spend", "{ran}");
    assert_eq!(warehouse.overwritten.load(Ordering::SeqCst), 2);

    // Every call through the bridge was audited with its outcome.
    let records = platform.audit("warehouse");
    let calls: Vec<&Value> = records
        .iter()
        .filter(|r| r["tool"] == "overwrite_table" && r["user"] == "dev")
        .collect();
    assert!(calls.len() >= 3, "{records:?}");
    assert!(calls.iter().any(|r| r["outcome"] == "ok"), "{records:?}");
}

const ARCHIVE: &str = r##"
[server]
name = "archive"
description = "Manage cold-storage archives"
owner_team = "finance-eng"
support_channel = "#archive"

[tools.purge_archive]
minutes_saved = 2.0
approval = "none"
"##;

/// The legacy-only server of `tests/node/legacy-server.mjs`, stopped when dropped.
struct LegacyServer {
    child: std::process::Child,
    url: String,
}

impl Drop for LegacyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl LegacyServer {
    fn start(tools: &std::path::Path) -> LegacyServer {
        use std::io::BufRead;
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/node/legacy-server.mjs"
        );
        let mut child = std::process::Command::new(tools.join("node_modules/.bin/node"))
            .arg(script)
            .env("SWITCHBOARD_NODE_TOOLS", tools)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ready: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("server said {line:?}: {e}"));
        LegacyServer {
            child,
            url: ready["url"].as_str().unwrap().to_owned(),
        }
    }

    async fn purged(&self) -> u64 {
        let stats = self.url.replace("/mcp", "/stats");
        let body: Value = reqwest::get(stats).await.unwrap().json().await.unwrap();
        body["purged"].as_u64().unwrap()
    }
}

/// Between eras, the other way: a 2026-07-28 client (the official Python SDK) and a third-party
/// server that speaks only the legacy era (the official TypeScript SDK 1.x). The gateway learns
/// the server's era, runs each request in a legacy session as the caller, and turns the server's
/// `elicitation/create` into an `input_required` round; the client's answer, sent back with the
/// round's `requestState`, reaches the waiting server, which acts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_modern_client_confirms_with_a_server_that_speaks_only_the_old_era() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let Some(tools) = crate::harness::node_tools_dir() else {
        crate::harness::available("node 22 and the TypeScript MCP SDK", false);
        return;
    };
    let legacy = LegacyServer::start(&tools);
    let platform = Platform::start();
    // What the server lists is what gets registered and approved.
    let listed = {
        use rmcp::ServiceExt;
        let transport =
            rmcp::transport::StreamableHttpClientTransport::from_uri(legacy.url.clone());
        let client = ().serve(transport).await.unwrap();
        let tools = client.list_all_tools().await.unwrap();
        client.cancel().await.unwrap();
        tools
    };
    platform.register(ARCHIVE, &legacy.url, &json!(listed));
    platform.approve("archive");
    let url = format!("{}/servers/archive/mcp", platform.gateway_url);
    let token = platform.token("dev", &["employees"]);
    let archive = json!({"archive": "logs-2019"});
    let run = |answer: Option<&str>| {
        python_output(
            python_agent(
                &python,
                &url,
                "2026-07-28",
                &token,
                "purge_archive",
                &archive,
                answer,
            )
            .output()
            .unwrap(),
        )
    };
    let yes = run(Some("accept"));
    assert_eq!(yes["protocol_version"], "2026-07-28", "{yes}");
    assert_eq!(yes["tools"], json!(["purge_archive"]), "{yes}");
    assert_eq!(yes["text"][0], "purged logs-2019", "{yes}");
    assert_eq!(yes["asked"], json!(["Purge archive logs-2019?"]), "{yes}");
    assert_eq!(legacy.purged().await, 1);
    let no = run(Some("decline"));
    assert_eq!(no["text"][0], "kept logs-2019", "{no}");
    assert_eq!(legacy.purged().await, 1);

    // A round's state is the caller's own: replayed by someone else, or for other arguments, it
    // is refused.
    let http = reqwest::Client::new();
    let call = |who: &str, archive: &str, state: Option<&str>| {
        let mut params = json!({"name": "purge_archive", "arguments": {"archive": archive},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                      "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}}}});
        if let Some(state) = state {
            params["requestState"] = json!(state);
            params["inputResponses"] = json!({});
        }
        http.post(&url)
            .bearer_auth(who)
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "purge_archive")
            .json(&json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}))
            .send()
    };
    let first: Value = call(&token, "logs-2020", None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["result"]["resultType"], "input_required", "{first}");
    let state = first["result"]["requestState"].as_str().unwrap().to_owned();
    let other = platform.token("mallory", &["employees"]);
    for (who, archive) in [(&other, "logs-2020"), (&token, "logs-2021")] {
        let refused: Value = call(who, archive, Some(&state))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(refused["error"]["code"], -32602, "{refused}");
    }
    assert_eq!(legacy.purged().await, 1);

    // Each round was audited with what it came to.
    let records = platform.audit("archive");
    let outcomes: Vec<&str> = records
        .iter()
        .filter(|r| r["tool"] == "purge_archive" && r["user"] == "dev")
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert!(outcomes.contains(&"input_required"), "{records:?}");
    assert!(outcomes.contains(&"ok"), "{records:?}");
}

/// 2026-07-28 in the protocol's own terms: a client that can elicit gets `input_required` rounds
/// while its call waits for approval (its user is asked to check again; the call comes back with
/// the proposal's state), and the result in the round after the approval.
#[tokio::test(flavor = "multi_thread")]
async fn a_modern_client_waits_for_approval_in_input_required_rounds() {
    let Some(python) = crate::harness::python() else {
        crate::harness::available("the official MCP Python SDK (pip install mcp)", false);
        return;
    };
    let (platform, payouts, url) = payouts_platform(
        Platform::start_with(&["--approval-wait-secs", "1"]),
        std::time::Duration::ZERO,
    )
    .await;
    let token = platform.token("dev", &["employees"]);
    let approver = platform.token("ava", &["refund-approvers"]);
    let refund = json!({"id": "m-1"});
    let agent = python_agent(
        &python,
        &url,
        "2026-07-28",
        &token,
        "issue_refund",
        &refund,
        Some("accept"),
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Let it go round at least once, then approve.
    decide_when_proposed(
        &platform,
        &approver,
        true,
        std::time::Duration::from_millis(1800),
    )
    .await;
    let out = tokio::task::spawn_blocking(move || agent.wait_with_output().unwrap())
        .await
        .unwrap();
    let result = python_output(out);
    assert_eq!(result["text"][0], "refund m-1 issued (#1)", "{result}");
    let asked = result["asked"].as_array().unwrap();
    assert!(!asked.is_empty(), "{result}");
    assert!(
        asked[0]
            .as_str()
            .unwrap()
            .contains("waiting for approval by group:refund-approvers"),
        "{result}"
    );
    assert_eq!(payouts.issued.load(Ordering::SeqCst), 1);
}
