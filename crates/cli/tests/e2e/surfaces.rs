//! The surfaces where people work: the web chat in headless Chromium (sign in, ask, see the
//! answer stream in with its tool call inline; approve a call inline; answer a tool's question
//! inline) and the chat bots (signed Slack-shaped events from two channels, where the channel
//! decides which tools may run; an approval answered in the thread through the generic webhook). The model is a scripted
//! OpenAI-compatible chat-completions endpoint the test starts on loopback; Slack's Web API is
//! a loopback recorder of `chat.postMessage`.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    extract::State,
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::{Value, json};

use crate::{
    harness::Platform,
    ui::{browser_available, run_browser, screenshots},
};

/// When the person's message contains `trigger`, the model calls `tool` with `arguments`.
struct Rule {
    trigger: &'static str,
    tool: String,
    arguments: Value,
}

/// A chat-completions endpoint that follows rules: a person's message that matches one gets a
/// tool call; a tool's answer gets "Here is what I found: <answer>". Every request is kept.
struct ScriptedModel {
    rules: Vec<Rule>,
    requests: Mutex<Vec<Value>>,
}

impl ScriptedModel {
    /// The names of the tools offered in each request so far.
    fn offered(&self) -> Vec<Vec<String>> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                r["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        t["function"]["name"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .collect()
    }
}

fn chunk(delta: Value) -> String {
    format!(
        "data: {}\n\n",
        json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]})
    )
}

async fn completions(State(model): State<Arc<ScriptedModel>>, Json(body): Json<Value>) -> Response {
    model.requests.lock().unwrap().push(body.clone());
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .cloned()
        .unwrap_or_default();
    let content = last["content"].as_str().unwrap_or_default().to_owned();
    let mut events = vec![chunk(json!({"role": "assistant"}))];
    if last["role"] == "tool" {
        events.push(chunk(json!({"content": "Here is what I found: "})));
        let cut: String = content.chars().take(400).collect();
        events.push(chunk(json!({"content": cut})));
    } else if let Some(rule) = model.rules.iter().find(|r| content.contains(r.trigger)) {
        // The arguments arrive in two fragments, as real models stream them.
        let arguments = rule.arguments.to_string();
        let (a, b) = arguments.split_at(arguments.len() / 2);
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": rule.tool, "arguments": a}}]}),
        ));
        events.push(chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
        ));
    } else {
        events.push(chunk(json!({"content": "No tool fits that."})));
    }
    events.push("data: [DONE]\n\n".to_owned());
    (
        [(axum::http::header::CONTENT_TYPE, "text/event-stream")],
        events.concat(),
    )
        .into_response()
}

/// Starts the scripted model on loopback; returns its `/v1` base URL.
async fn start_model(rules: Vec<Rule>) -> (String, Arc<ScriptedModel>) {
    let model = Arc::new(ScriptedModel {
        rules,
        requests: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(model.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, model)
}

const HANDBOOK: &str = r##"
[server]
name = "handbook"
description = "The engineering handbook: runbooks and how-tos"
owner_team = "finance-eng"
support_channel = "#handbook"
[tools.search_docs]
minutes_saved = 3.0
approval = "self"
[tools.get_doc]
minutes_saved = 2.0
"##;

#[tokio::test(flavor = "multi_thread")]
async fn the_web_chat_shows_tool_calls_approvals_and_questions_inline() {
    if !browser_available() {
        return;
    }
    let (llm, model) = start_model(vec![
        Rule {
            trigger: "Presto access",
            tool: "knowledge__search_docs".into(),
            arguments: json!({"query": "presto access"}),
        },
        Rule {
            trigger: "handbook",
            tool: "handbook__search_docs".into(),
            arguments: json!({"query": "presto"}),
        },
        Rule {
            trigger: "greet me",
            tool: "conformance__test_input_required_result_elicitation".into(),
            arguments: json!({}),
        },
    ])
    .await;
    let mut platform = Platform::start_with(&["--llm-url", &llm, "--llm-model", "scripted"]);
    platform.start_knowledge(HANDBOOK);
    platform.start_conformance_fixture();
    let shots = screenshots("chat");

    // Ask; the answer streams in after an inline tool call through the gateway.
    let seen = run_browser(
        "ui-chat.mjs",
        &[
            platform.chat_url.as_ref(),
            shots.as_os_str(),
            "dana".as_ref(),
            "employees".as_ref(),
            "Search the docs: how do I get Presto access?".as_ref(),
            "answer".as_ref(),
        ],
    );
    assert_eq!(seen["tool"], "knowledge__search_docs", "{seen}");
    let result = seen["result"].as_str().unwrap();
    assert!(result.to_lowercase().contains("presto"), "{seen}");
    let answer = seen["answer"].as_str().unwrap();
    assert!(answer.starts_with("Here is what I found: "), "{seen}");
    // The model was offered the most relevant of the person's tools (there are more than 12) and
    // the tool that searches the rest.
    let offered = &model.offered()[0];
    assert!(
        offered.contains(&"knowledge__search_docs".to_owned()),
        "{offered:?}"
    );
    assert!(offered.len() <= 13, "{offered:?}");
    assert!(offered.contains(&"search_tools".to_owned()), "{offered:?}");
    assert!(
        seen["tools"]
            .as_str()
            .unwrap()
            .contains("tools available here"),
        "{seen}"
    );

    // A call that needs the person's own approval: approved inline, it runs and is answered.
    let seen = run_browser(
        "ui-chat.mjs",
        &[
            platform.chat_url.as_ref(),
            shots.as_os_str(),
            "erin".as_ref(),
            "employees".as_ref(),
            "Search the handbook for presto".as_ref(),
            "approve".as_ref(),
        ],
    );
    assert!(
        seen["approval"]
            .as_str()
            .unwrap()
            .starts_with("handbook__search_docs needs approval by self"),
        "{seen}"
    );
    assert!(
        seen["decided"].as_str().unwrap().starts_with("Approved"),
        "{seen}"
    );
    assert_eq!(seen["tool"], "handbook__search_docs", "{seen}");
    assert!(
        seen["answer"]
            .as_str()
            .unwrap()
            .starts_with("Here is what I found: "),
        "{seen}"
    );

    // A tool that asks the person a question: answered in the inline form, the call goes on.
    let seen = run_browser(
        "ui-chat.mjs",
        &[
            platform.chat_url.as_ref(),
            shots.as_os_str(),
            "fay".as_ref(),
            "employees".as_ref(),
            "Please greet me".as_ref(),
            "input:Fay".as_ref(),
        ],
    );
    assert_eq!(seen["question"], "What is your name?", "{seen}");
    assert_eq!(seen["answered"], "Sent.", "{seen}");
    assert_eq!(seen["result"], "Hello, Fay!", "{seen}");
    assert_eq!(
        seen["answer"], "Here is what I found: Hello, Fay!",
        "{seen}"
    );

    // The audit names the surface and the proposal.
    let audit = platform.cli(&[
        "audit",
        "export",
        "--format",
        "jsonl",
        "--token",
        &platform.token("auditor", &["platform-admins"]),
    ]);
    let records: Vec<Value> = audit
        .1
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let erin: Vec<&Value> = records.iter().filter(|r| r["user"] == "erin").collect();
    assert!(!erin.is_empty(), "{audit:?}");
    assert!(erin.iter().all(|r| r["surface"] == "web-chat"), "{erin:?}");
    assert!(erin.iter().any(|r| r["outcome"] == "ok"), "{erin:?}");
}

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
minutes_saved = 2.0
approval = "group:finance-leads"
"##;

const BOT_CHANNEL_POLICY: &str = r#"
@id("bot-channel")
forbid(principal, action, resource)
when { context.surface == "bot" && !(context has channel && context.channel == "finance-help") };
"#;

const DIRECTORY: &str = r#"
[users.U0FIONA]
user = "fiona"
groups = ["finance"]

[users.U0LENA]
user = "lena"
groups = ["finance", "finance-leads"]

[channels]
C0FIN = "finance-help"
C0RND = "random"
"#;

/// Slack's Web API as far as the bot uses it: `chat.postMessage`, recorded.
async fn start_slack() -> (String, Arc<Mutex<Vec<Value>>>) {
    let posted = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/api/chat.postMessage",
            post(
                |State(posted): State<Arc<Mutex<Vec<Value>>>>,
                 headers: axum::http::HeaderMap,
                 Json(body): Json<Value>| async move {
                    let authorized = headers
                        .get("authorization")
                        .is_some_and(|v| v == "Bearer xoxb-test-token");
                    if !authorized {
                        return Json(json!({"ok": false, "error": "invalid_auth"}));
                    }
                    posted.lock().unwrap().push(body);
                    Json(json!({"ok": true}))
                },
            ),
        )
        .with_state(posted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, posted)
}

fn hmac_hex(secret: &str, base: &str) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    aws_lc_rs::hmac::sign(&key, base.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn now() -> String {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string()
}

/// Posts `body` to the chat service's `path`, signed as `sign` says (it gets the timestamp and
/// the body, and gives the timestamp and signature headers); returns the status and JSON answer.
async fn post_signed(
    chat_url: &str,
    path: &str,
    body: Value,
    sign: impl Fn(&str, &str) -> [(&'static str, String); 2],
) -> (u16, Value) {
    let body = body.to_string();
    let mut request = reqwest::Client::new()
        .post(format!("{chat_url}{path}"))
        .header("content-type", "application/json");
    for (name, value) in sign(&now(), &body) {
        request = request.header(name, value);
    }
    let response = request.body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Posts a Slack event signed with `secret` (Slack's `v0` scheme).
async fn post_slack(chat_url: &str, secret: &str, event: Value) -> (u16, Value) {
    post_signed(chat_url, "/bots/slack/events", event, |ts, body| {
        [
            ("x-slack-request-timestamp", ts.to_owned()),
            (
                "x-slack-signature",
                format!("v0={}", hmac_hex(secret, &format!("v0:{ts}:{body}"))),
            ),
        ]
    })
    .await
}

fn message(id: &str, channel: &str, user: &str, text: &str, ts: &str) -> Value {
    json!({
        "type": "event_callback",
        "event_id": id,
        "event": {"type": "app_mention", "channel": channel, "user": user, "text": text, "ts": ts}
    })
}

/// Waits until Slack got a reply in `thread` whose text satisfies `want`.
async fn reply_in(posted: &Mutex<Vec<Value>>, thread: &str, want: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found = posted
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p["thread_ts"] == thread)
            .filter_map(|p| p["text"].as_str())
            .find(|t| want(t))
            .map(str::to_owned);
        if let Some(text) = found {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "no reply in thread {thread}; posted: {:?}",
            posted.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Posts a webhook message signed with `secret` (Switchboard's `v1` scheme).
async fn post_webhook(chat_url: &str, secret: &str, message: Value) -> (u16, Value) {
    post_signed(chat_url, "/bots/webhook", message, |ts, body| {
        [
            ("x-switchboard-timestamp", ts.to_owned()),
            (
                "x-switchboard-signature",
                format!("v1={}", hmac_hex(secret, &format!("{ts}.{body}"))),
            ),
        ]
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bot_uses_a_tool_in_the_channel_that_allows_it_and_not_in_another() {
    let (llm, model) = start_model(vec![
        Rule {
            trigger: "runbooks",
            tool: "finance-docs__search_docs".into(),
            arguments: json!({"query": "presto"}),
        },
        Rule {
            trigger: "open the guide",
            tool: "finance-docs__get_doc".into(),
            arguments: json!({"path": "guides/presto-access.md"}),
        },
    ])
    .await;
    let (slack_api, posted) = start_slack().await;
    let dir = tempfile::tempdir().unwrap();
    let directory = dir.path().join("directory.toml");
    std::fs::write(&directory, DIRECTORY).unwrap();
    let policies = dir.path().join("finance-docs.cedar");
    std::fs::write(&policies, BOT_CHANNEL_POLICY).unwrap();
    let (slack_secret, webhook_secret) = ("8f742231b10e8888abcd99yyyzzz85a5", "webhook-secret-1");
    let mut platform = Platform::start_with(&[
        "--llm-url",
        &llm,
        "--bot-directory",
        directory.to_str().unwrap(),
        "--slack-signing-secret",
        slack_secret,
        "--slack-bot-token",
        "xoxb-test-token",
        "--slack-api-url",
        &slack_api,
        "--webhook-secret",
        webhook_secret,
        // Announce approvals at once instead of holding the call.
        "--approval-wait-secs",
        "0",
    ]);
    platform.start_knowledge_with(
        FINANCE_DOCS,
        &[
            "--environment",
            "prod",
            "--policies",
            policies.to_str().unwrap(),
        ],
    );
    let chat = platform.chat_url.clone();

    // Slack's URL verification, and refusals of unsigned or stale requests.
    let (status, body) = post_slack(
        &chat,
        slack_secret,
        json!({"type": "url_verification", "challenge": "abc123"}),
    )
    .await;
    assert_eq!((status, body["challenge"].as_str()), (200, Some("abc123")));
    let (status, body) = post_slack(
        &chat,
        "wrong-secret",
        message("Ev0", "C0FIN", "U0FIONA", "hi", "1.0"),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "the request's signature does not match");

    // In #finance-help the tool runs and the answer is posted in the thread.
    let ask = "<@UBOT> search the runbooks for presto";
    let (status, _) = post_slack(
        &chat,
        slack_secret,
        message("Ev1", "C0FIN", "U0FIONA", ask, "100.1"),
    )
    .await;
    assert_eq!(status, 200);
    let answer = reply_in(&posted, "100.1", |t| t.starts_with("Here is what I found")).await;
    assert!(answer.to_lowercase().contains("presto"), "{answer}");

    // In #random the same question finds no tool, and the call is refused by the channel policy.
    let (status, _) = post_slack(
        &chat,
        slack_secret,
        message("Ev2", "C0RND", "U0FIONA", ask, "200.1"),
    )
    .await;
    assert_eq!(status, 200);
    let answer = reply_in(&posted, "200.1", |t| t.starts_with("Here is what I found")).await;
    assert!(
        answer.contains("denied by policy finance-docs/bot-channel"),
        "{answer}"
    );
    let offered = model.offered();
    assert!(
        offered
            .iter()
            .any(|o| o.contains(&"finance-docs__search_docs".to_owned())),
        "{offered:?}"
    );
    assert!(
        offered
            .iter()
            .any(|o| !o.iter().any(|t| t.starts_with("finance-docs__"))),
        "in #random the bot offers no finance-docs tool: {offered:?}"
    );
    // A retried event (same id) is answered once.
    let (status, _) = post_slack(
        &chat,
        slack_secret,
        message("Ev1", "C0FIN", "U0FIONA", ask, "100.1"),
    )
    .await;
    assert_eq!(status, 200);
    // Strangers are told who to ask.
    post_slack(
        &chat,
        slack_secret,
        message("Ev3", "C0FIN", "U0NOBODY", ask, "300.1"),
    )
    .await;
    let stranger = reply_in(&posted, "300.1", |_| true).await;
    assert!(
        stranger.starts_with("I don't know who U0NOBODY is"),
        "{stranger}"
    );

    // Through the generic webhook: a call that needs a finance lead's approval is announced in
    // its thread, a lead approves there, and the call runs as the person who asked, in the
    // channel it was asked in (which the server's own channel policy requires).
    let (status, body) = post_webhook(
        &chat,
        webhook_secret,
        json!({"channel": "C0FIN", "user": "U0FIONA", "text": "open the guide to presto access", "thread": "T1"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let replies: Vec<&str> = body["replies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        replies[0].starts_with("get_doc needs approval by group:finance-leads"),
        "{replies:?}"
    );
    // Fiona cannot approve her own call.
    let (_, body) = post_webhook(
        &chat,
        webhook_secret,
        json!({"channel": "C0FIN", "user": "U0FIONA", "text": "approve", "thread": "T1"}),
    )
    .await;
    let refused = body["replies"][0].as_str().unwrap();
    assert!(refused.contains("was not decided"), "{body}");
    let (_, body) = post_webhook(
        &chat,
        webhook_secret,
        json!({"channel": "C0FIN", "user": "U0LENA", "text": "approve", "thread": "T1"}),
    )
    .await;
    let replies: Vec<&str> = body["replies"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        replies[0].starts_with("lena approved get_doc"),
        "{replies:?}"
    );
    assert!(replies[1].starts_with("get_doc answered:"), "{replies:?}");
    assert!(replies[1].to_lowercase().contains("presto"), "{replies:?}");
    let (status, body) = post_webhook(
        &chat,
        "not-the-secret",
        json!({"channel": "C0FIN", "user": "U0LENA", "text": "hi"}),
    )
    .await;
    assert_eq!(status, 401, "{body}");
}
