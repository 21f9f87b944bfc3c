//! The chat bots: a Slack-compatible Events API adapter and a generic webhook, both signed with
//! a shared secret and both answered by the agent on surface `bot`, in the channel the message
//! came from (the channel is a policy dimension: policies decide which servers and tools each
//! channel may use). Who wrote a message comes from the bot's directory (chat account → user and
//! groups); strangers are told so. A call that needs approval is announced in its thread, where
//! an approver answers `approve` or `reject <reason>`; the approved call then runs as the person
//! who asked, and its result is posted in the thread.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    path::Path,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use registry_client::Credentials;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    agent::{Agent, Answers, Event, Turn},
    llm::Message,
    tokens::{BOT_SURFACE, Who},
    toolset::SEPARATOR,
};

/// How far a signed request's timestamp may be from now (Slack's own rule: five minutes).
const MAX_SKEW_SECONDS: i64 = 300;
/// The gateway's tool for following up on proposals.
const PROPOSAL_TOOL: &str = "switchboard_proposal";
/// How long a thread's conversation is kept after its last message.
const THREAD_TTL: Duration = Duration::from_secs(24 * 3600);
/// How many Slack event ids are remembered to drop Slack's retries.
const SEEN_EVENTS: usize = 4096;

/// Chat accounts and channels, as the bot knows them (a TOML file):
///
/// ```toml
/// [users.U024BE7LH]
/// user = "alice@example.com"
/// groups = ["employees", "data-eng"]
///
/// [channels]
/// C0123 = "airflow-support"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    #[serde(default)]
    pub users: HashMap<String, DirectoryUser>,
    /// Channel id → the channel name policies use (a channel not listed is named by its id).
    #[serde(default)]
    pub channels: HashMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectoryUser {
    pub user: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

impl Directory {
    pub fn load(path: &Path) -> anyhow::Result<Directory> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("read the bot directory {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the bot directory {} is invalid: {e}", path.display()))
    }
}

/// A Slack app (or any service speaking Slack's Events and Web APIs).
#[derive(Clone)]
pub struct SlackConfig {
    pub signing_secret: String,
    pub bot_token: String,
    /// The Web API base, `https://slack.com/api` for Slack.
    pub api_url: String,
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Default)]
pub struct BotConfig {
    pub directory: Directory,
    pub slack: Option<SlackConfig>,
    /// Signs the generic webhook's requests.
    pub webhook_secret: Option<String>,
}

/// A call waiting for approval in a thread.
#[derive(Clone)]
struct Pending {
    proposal: String,
    server: String,
    tool: String,
    requester: Who,
}

struct Thread {
    history: Arc<tokio::sync::Mutex<Vec<Message>>>,
    pending: Vec<Pending>,
    touched: Instant,
}

pub struct Bots {
    agent: Arc<Agent>,
    config: BotConfig,
    threads: Mutex<HashMap<String, Thread>>,
    seen: Mutex<(HashSet<String>, VecDeque<String>)>,
    http: reqwest::Client,
}

/// One message to answer, whatever the chat system.
struct Incoming {
    channel: String,
    user: String,
    text: String,
    thread: String,
}

impl Bots {
    pub fn new(agent: Arc<Agent>, config: BotConfig) -> Bots {
        Bots {
            agent,
            config,
            threads: Mutex::new(HashMap::new()),
            seen: Mutex::new((HashSet::new(), VecDeque::new())),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(15))
                .build()
                .expect("the HTTP client configuration is static and valid"),
        }
    }

    fn threads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Thread>> {
        self.threads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The replies to one message, in order.
    async fn handle(&self, incoming: Incoming) -> Vec<String> {
        let Some(person) = self.config.directory.users.get(&incoming.user) else {
            return vec![format!(
                "I don't know who {} is in Switchboard, so I can't use any tools for them. Ask the platform team to add the account to the bot's directory.",
                incoming.user
            )];
        };
        let channel = self
            .config
            .directory
            .channels
            .get(&incoming.channel)
            .cloned()
            .unwrap_or_else(|| incoming.channel.clone());
        let who = Who {
            user: person.user.clone(),
            groups: person.groups.clone(),
            surface: BOT_SURFACE.into(),
            channel: Some(channel),
        };
        let key = format!("{}:{}", incoming.channel, incoming.thread);
        let history = {
            let mut threads = self.threads();
            let now = Instant::now();
            threads.retain(|_, t| now.duration_since(t.touched) < THREAD_TTL);
            let thread = threads.entry(key.clone()).or_insert_with(|| Thread {
                history: Arc::new(tokio::sync::Mutex::new(Vec::new())),
                pending: Vec::new(),
                touched: now,
            });
            thread.touched = now;
            thread.history.clone()
        };
        let text = incoming.text.trim();
        let mut words = text.splitn(2, char::is_whitespace);
        let verb = words.next().unwrap_or_default().to_lowercase();
        if verb == "approve" || verb == "reject" {
            let pending = self
                .threads()
                .get(&key)
                .map(|t| t.pending.clone())
                .unwrap_or_default();
            if !pending.is_empty() {
                let comment = words.next().unwrap_or_default().trim().to_owned();
                return self
                    .decide(&key, &who, pending, verb == "approve", comment)
                    .await;
            }
        }
        // One answer at a time per thread.
        let mut history = history.lock().await;
        let (events, mut received) = mpsc::channel::<Event>(64);
        let turn = Turn {
            who: &who,
            events,
            answers: Arc::new(Answers::default()),
        };
        // The turn owns the only sender: the events end when it does.
        let conversation = &mut *history;
        let answering = async move { self.agent.turn(conversation, text, &turn).await };
        let collect = async {
            let mut notes = Vec::new();
            let mut pending = Vec::new();
            while let Some(event) = received.recv().await {
                match event {
                    Event::Approval {
                        proposal,
                        tool,
                        approver,
                        ..
                    } => {
                        let (server, tool) = tool
                            .split_once(SEPARATOR)
                            .map(|(s, t)| (s.to_owned(), t.to_owned()))
                            .unwrap_or_default();
                        notes.push(format!(
                            "{tool} needs approval by {approver} before it runs (proposal {proposal}). An approver can reply `approve` or `reject <reason>` in this thread."
                        ));
                        pending.push((proposal, server, tool));
                    }
                    Event::Input { message, .. } => notes.push(format!(
                        "A tool asked: \"{message}\". Chat bots cannot answer a tool's questions yet; use the web chat or your IDE for this one."
                    )),
                    _ => {}
                }
            }
            (notes, pending)
        };
        let (answer, (mut replies, pending)) = tokio::join!(answering, collect);
        drop(history);
        if !pending.is_empty()
            && let Some(thread) = self.threads().get_mut(&key)
        {
            for (proposal, server, tool) in pending {
                thread.pending.push(Pending {
                    proposal,
                    server,
                    tool,
                    requester: who.clone(),
                });
            }
        }
        if !answer.is_empty() {
            replies.push(answer);
        }
        replies
    }

    /// An approver's answer in a thread: decided as them in the registry; approved calls then
    /// run as the person who asked.
    async fn decide(
        &self,
        key: &str,
        approver: &Who,
        pending: Vec<Pending>,
        approve: bool,
        comment: String,
    ) -> Vec<String> {
        if !approve && comment.is_empty() {
            return vec![
                "Say why: `reject <reason>` (the agent and the person who asked are told).".into(),
            ];
        }
        let token = match self.agent.minter.mint(approver) {
            Ok(t) => t,
            Err(e) => return vec![e],
        };
        let registry = self
            .agent
            .registry
            .with_credentials(Credentials::Static(token));
        let ids: Vec<String> = pending.iter().map(|p| p.proposal.clone()).collect();
        let outcome = match registry.decide_proposals(&ids, approve, &comment).await {
            Ok(o) => o,
            Err(e) => return vec![format!("The decision was not recorded: {e}")],
        };
        let mut replies: Vec<String> = outcome
            .refused
            .iter()
            .map(|r| format!("{} was not decided: {}", r.id, r.reason))
            .collect();
        let decided: HashSet<&str> = outcome
            .decided
            .iter()
            .map(|p| p.proposal.id.as_str())
            .collect();
        if let Some(thread) = self.threads().get_mut(key) {
            thread
                .pending
                .retain(|p| !decided.contains(p.proposal.as_str()));
        }
        for p in pending
            .iter()
            .filter(|p| decided.contains(p.proposal.as_str()))
        {
            if !approve {
                replies.push(format!(
                    "{} rejected {} ({}): {comment}",
                    approver.user, p.tool, p.proposal
                ));
                continue;
            }
            replies.push(format!(
                "{} approved {} ({}); running it as {}.",
                approver.user, p.tool, p.proposal, p.requester.user
            ));
            let (events, _ignored) = mpsc::channel::<Event>(16);
            let turn = Turn {
                who: &p.requester,
                events,
                answers: Arc::new(Answers::default()),
            };
            let (text, is_error) = self
                .agent
                .call_tool(
                    &p.proposal,
                    &format!("{}{SEPARATOR}{PROPOSAL_TOOL}", p.server),
                    json!({"id": p.proposal}),
                    &turn,
                )
                .await;
            replies.push(if is_error {
                format!("{} failed: {text}", p.tool)
            } else {
                format!("{} answered:\n{text}", p.tool)
            });
        }
        replies
    }

    fn first_sighting(&self, event_id: &str) -> bool {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !seen.0.insert(event_id.to_owned()) {
            return false;
        }
        seen.1.push_back(event_id.to_owned());
        if seen.1.len() > SEEN_EVENTS
            && let Some(old) = seen.1.pop_front()
        {
            seen.0.remove(&old);
        }
        true
    }
}

/// The bots' routes: `/bots/slack/events` and `/bots/webhook`.
pub fn router(bots: Arc<Bots>) -> Router {
    Router::new()
        .route("/bots/slack/events", post(slack_events))
        .route("/bots/webhook", post(webhook))
        .with_state(bots)
}

fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// Checks `signature` (hex HMAC-SHA256 of `base` under `secret`) and that `timestamp` is recent.
pub(crate) fn verify_signature(
    secret: &str,
    timestamp: Option<&str>,
    base: &[u8],
    signature: Option<&str>,
) -> Result<(), &'static str> {
    let timestamp = timestamp
        .and_then(|t| t.parse::<i64>().ok())
        .ok_or("the request has no valid timestamp header")?;
    let now = i64::try_from(identity::now_seconds()).unwrap_or(i64::MAX);
    if (now - timestamp).abs() > MAX_SKEW_SECONDS {
        return Err("the request's timestamp is more than five minutes from now");
    }
    let signature = signature
        .and_then(|s| hex::decode(s).ok())
        .ok_or("the request has no valid signature header")?;
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    aws_lc_rs::hmac::verify(&key, base, &signature)
        .map_err(|_| "the request's signature does not match")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Slack's Events API: URL verification, then `app_mention` and `message` events, acknowledged
/// at once and answered in their thread through `chat.postMessage`.
async fn slack_events(State(bots): State<Arc<Bots>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(slack) = bots.config.slack.clone() else {
        return failure(
            StatusCode::NOT_FOUND,
            "the Slack adapter is not configured (--slack-signing-secret, --slack-bot-token)",
        );
    };
    let timestamp = header(&headers, "x-slack-request-timestamp");
    let mut base = format!("v0:{}:", timestamp.unwrap_or_default()).into_bytes();
    base.extend_from_slice(&body);
    let signature = header(&headers, "x-slack-signature").and_then(|s| s.strip_prefix("v0="));
    if let Err(why) = verify_signature(&slack.signing_secret, timestamp, &base, signature) {
        tracing::info!(reason = why, "refused a Slack request");
        return failure(StatusCode::UNAUTHORIZED, why);
    }
    let payload: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("the body is not JSON: {e}"),
            );
        }
    };
    match payload.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            return Json(json!({"challenge": payload.get("challenge")})).into_response();
        }
        Some("event_callback") => {}
        _ => return StatusCode::OK.into_response(),
    }
    if let Some(id) = payload.get("event_id").and_then(Value::as_str)
        && !bots.first_sighting(id)
    {
        return StatusCode::OK.into_response();
    }
    let event = payload.get("event").cloned().unwrap_or_default();
    let field = |k: &str| event.get(k).and_then(Value::as_str).map(str::to_owned);
    // Never answer bots (ourselves included) or edits and other subtypes.
    if event.get("bot_id").is_some() || event.get("subtype").is_some() {
        return StatusCode::OK.into_response();
    }
    if !matches!(field("type").as_deref(), Some("app_mention" | "message")) {
        return StatusCode::OK.into_response();
    }
    let (Some(channel), Some(user), Some(ts)) = (field("channel"), field("user"), field("ts"))
    else {
        return failure(
            StatusCode::BAD_REQUEST,
            "the event lacks channel, user or ts",
        );
    };
    let incoming = Incoming {
        channel: channel.clone(),
        user,
        text: without_mentions(&field("text").unwrap_or_default()),
        thread: field("thread_ts").unwrap_or(ts),
    };
    let thread = incoming.thread.clone();
    // Slack wants an answer within three seconds: acknowledge now, reply when done.
    tokio::spawn(async move {
        for reply in bots.handle(incoming).await {
            let posted = bots
                .http
                .post(format!(
                    "{}/chat.postMessage",
                    slack.api_url.trim_end_matches('/')
                ))
                .bearer_auth(&slack.bot_token)
                .json(&json!({"channel": channel, "thread_ts": thread, "text": reply}))
                .send()
                .await;
            match posted {
                Ok(r) => match r.json::<Value>().await {
                    Ok(v) if v.get("ok") == Some(&Value::Bool(true)) => {}
                    Ok(v) => {
                        let error = v.get("error").cloned().unwrap_or_default();
                        tracing::warn!(%error, "Slack refused a reply");
                    }
                    Err(e) => tracing::warn!(error = %e, "Slack's answer to a reply is not JSON"),
                },
                Err(e) => {
                    tracing::warn!(error = %e.without_url(), "could not post a reply to Slack")
                }
            }
        }
    });
    StatusCode::OK.into_response()
}

/// Slack's `<@U123>` mentions taken out of a message.
fn without_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("<@") {
        out.push_str(&rest[..start]);
        match rest[start..].find('>') {
            Some(end) => rest = &rest[start + end + 1..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WebhookMessage {
    channel: String,
    user: String,
    text: String,
    #[serde(default)]
    thread: Option<String>,
}

/// The generic webhook: any chat system (or script) posts `{channel, user, text, thread}` signed
/// with the shared secret (`X-Switchboard-Timestamp`, `X-Switchboard-Signature: v1=<hex
/// HMAC-SHA256 of "<timestamp>.<body>">`) and gets the replies in the response.
async fn webhook(State(bots): State<Arc<Bots>>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = bots.config.webhook_secret.clone() else {
        return failure(
            StatusCode::NOT_FOUND,
            "the webhook is not configured (--webhook-secret)",
        );
    };
    let timestamp = header(&headers, "x-switchboard-timestamp");
    let mut base = format!("{}.", timestamp.unwrap_or_default()).into_bytes();
    base.extend_from_slice(&body);
    let signature = header(&headers, "x-switchboard-signature").and_then(|s| s.strip_prefix("v1="));
    if let Err(why) = verify_signature(&secret, timestamp, &base, signature) {
        tracing::info!(reason = why, "refused a webhook request");
        return failure(StatusCode::UNAUTHORIZED, why);
    }
    let message: WebhookMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return failure(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{channel, user, text, thread?}}: {e}"),
            );
        }
    };
    let thread = message
        .thread
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let replies = bots
        .handle(Incoming {
            channel: message.channel,
            user: message.user,
            text: message.text,
            thread: thread.clone(),
        })
        .await;
    Json(json!({"thread": thread, "replies": replies})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sign(secret: &str, base: &[u8]) -> String {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
        hex::encode(aws_lc_rs::hmac::sign(&key, base).as_ref())
    }

    #[test]
    fn only_a_fresh_request_signed_with_the_secret_passes() {
        let now = identity::now_seconds().to_string();
        let base = format!("v0:{now}:{{}}");
        let good = sign("s3cret", base.as_bytes());
        assert!(verify_signature("s3cret", Some(&now), base.as_bytes(), Some(&good)).is_ok());
        assert_eq!(
            verify_signature("other", Some(&now), base.as_bytes(), Some(&good)),
            Err("the request's signature does not match")
        );
        let old = (identity::now_seconds() - 600).to_string();
        assert_eq!(
            verify_signature("s3cret", Some(&old), base.as_bytes(), Some(&good)),
            Err("the request's timestamp is more than five minutes from now")
        );
        assert!(verify_signature("s3cret", None, base.as_bytes(), Some(&good)).is_err());
        assert!(verify_signature("s3cret", Some(&now), base.as_bytes(), Some("zz")).is_err());
    }

    #[test]
    fn mentions_are_taken_out() {
        assert_eq!(
            without_mentions("<@U123> how many  orders <@U9>?"),
            "how many orders ?"
        );
        assert_eq!(without_mentions("no mention"), "no mention");
        assert_eq!(without_mentions("broken <@U1"), "broken <@U1");
    }

    #[test]
    fn a_directory_reads_users_and_channels_and_refuses_unknown_fields() {
        let d: Directory = toml::from_str(
            "[users.U1]\nuser = \"alice\"\ngroups = [\"employees\"]\n[channels]\nC1 = \"data-help\"\n",
        )
        .unwrap();
        assert_eq!(d.users["U1"].user, "alice");
        assert_eq!(d.channels["C1"], "data-help");
        assert!(toml::from_str::<Directory>("[users.U1]\nname = \"x\"\n").is_err());
    }
}
