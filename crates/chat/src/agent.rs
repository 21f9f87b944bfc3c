//! The agent behind every chat surface: it discovers the person's tools for the surface (and
//! channel), offers the model the relevant ones plus `search_tools`, streams the model's answer,
//! and runs each tool call through the gateway as the person. What happens is reported as
//! [`Event`]s: text as it arrives, each tool call and its result, approvals the gateway asked
//! for, and questions a tool asks the person (elicitation), which wait for the person's answer.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use registry_client::RegistryClient;
use rmcp::{
    ClientHandler, RoleClient,
    model::{
        CallToolRequestParams, CallToolResponse, CallToolResult, ClientCapabilities, ClientConfig,
        ContentBlock, ElicitationCapability, FormElicitationCapability, ProgressNotificationParam,
        RequestMetaObject,
    },
    service::NotificationContext,
};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::{
    llm::{Llm, Message, truncate},
    tokens::{Minter, Who},
    toolset::{self, SEARCH_TOOL, SEPARATOR, Toolset},
};

/// The `_meta` key under which the gateway describes a proposal.
const PROPOSAL_META: &str = "dev.switchboard/proposal";
/// The `requestState` prefix of a call that waits for its proposal (the gateway's).
const PROPOSAL_STATE: &str = "switchboard-proposal:";
/// The input request the gateway names its approval rounds with.
const APPROVAL_INPUT: &str = "switchboard_approval";
/// Header in which a bot names its channel to the gateway.
const CHANNEL_HEADER: &str = "x-switchboard-channel";
/// The most tool rounds in one turn before the agent stops.
const MAX_ROUNDS: usize = 8;
/// The longest tool answer given to the model.
const MAX_RESULT_BYTES: usize = 16 * 1024;
/// The most input rounds one tool call may ask for.
const MAX_INPUT_ROUNDS: usize = 10;

/// What happened during a turn, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The toolset of the turn: how many tools the person may use here, and which the model
    /// was offered.
    Tools {
        total: usize,
        offered: Vec<String>,
    },
    /// A piece of the model's answer.
    Text {
        text: String,
    },
    ToolCall {
        id: String,
        name: String,
        arguments: Value,
    },
    ToolResult {
        id: String,
        name: String,
        text: String,
        is_error: bool,
    },
    /// A call of `tool` (`<server>__<tool>`) waits for a person's approval: proposal
    /// `proposal`, decided by `approver`.
    Approval {
        id: String,
        proposal: String,
        tool: String,
        approver: String,
        arguments: Value,
    },
    /// A tool asks the person something; answer with the same `key`.
    Input {
        id: String,
        key: String,
        message: String,
        schema: Value,
    },
    /// The turn's final answer.
    Done {
        text: String,
    },
    Error {
        message: String,
    },
}

/// Answers a person gives while a turn waits: elicitation answers by key, approval decisions by
/// proposal id.
#[derive(Default)]
pub struct Answers {
    waiting: Mutex<HashMap<String, oneshot::Sender<Value>>>,
}

impl Answers {
    fn expect(&self, key: &str) -> oneshot::Receiver<Value> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(key.to_owned(), tx);
        rx
    }

    fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Hands `answer` to the turn waiting for `key`; false when none waits.
    pub fn give(&self, key: &str, answer: Value) -> bool {
        match self.lock().remove(key) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Value>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// How an agent works.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub gateway_url: String,
    /// The most tools offered to the model at once (the rest through `search_tools`).
    pub max_tools: usize,
    /// How long a turn waits for the person to answer a question or decide an approval (zero:
    /// it does not wait; the model is told the call is pending).
    pub input_wait: Duration,
    pub system_prompt: String,
}

pub const DEFAULT_SYSTEM_PROMPT: &str = "You are Switchboard's assistant for the company's engineers. Use the tools to answer from real data; never invent results. Tools run as the user, under the company's policies: when a call is denied or needs approval, say so plainly. Be concise.";

/// Runs turns for any surface.
pub struct Agent {
    pub config: AgentConfig,
    pub llm: Llm,
    pub registry: RegistryClient,
    pub minter: Arc<Minter>,
}

/// One turn: the person, where events go, and where their answers come from.
pub struct Turn<'a> {
    pub who: &'a Who,
    pub events: mpsc::Sender<Event>,
    pub answers: Arc<Answers>,
}

impl Turn<'_> {
    async fn emit(&self, event: Event) {
        // A person who left does not stop the turn: the calls still finish and are audited.
        let _ = self.events.send(event).await;
    }
}

impl Agent {
    /// Answers `text` in the conversation `history` (which gains the turn's messages). The final
    /// answer is returned and also sent as [`Event::Done`]; failures as [`Event::Error`].
    pub async fn turn(&self, history: &mut Vec<Message>, text: &str, turn: &Turn<'_>) -> String {
        match self.run(history, text, turn).await {
            Ok(answer) => {
                turn.emit(Event::Done {
                    text: answer.clone(),
                })
                .await;
                answer
            }
            Err(message) => {
                turn.emit(Event::Error {
                    message: message.clone(),
                })
                .await;
                message
            }
        }
    }

    async fn run(
        &self,
        history: &mut Vec<Message>,
        text: &str,
        turn: &Turn<'_>,
    ) -> Result<String, String> {
        let token = self.minter.mint(turn.who)?;
        let discovery = self
            .registry
            .discovery_in(&token, turn.who.channel.as_deref())
            .await
            .map_err(|e| format!("could not discover your tools: {e}"))?;
        let tools = Toolset::from_discovery(&discovery);
        let mut offered: Vec<String> = if tools.len() <= self.config.max_tools {
            tools.names().map(str::to_owned).collect()
        } else {
            let context = history
                .iter()
                .rev()
                .filter(|m| m.role == "user")
                .take(2)
                .filter_map(|m| m.content.clone())
                .collect::<Vec<_>>()
                .join(" ");
            tools.rank(&format!("{text} {context}"), self.config.max_tools)
        };
        let searchable = tools.len() > self.config.max_tools;
        turn.emit(Event::Tools {
            total: tools.len(),
            offered: offered.clone(),
        })
        .await;
        if history.is_empty() {
            history.push(Message::system(&self.config.system_prompt));
        }
        history.push(Message::user(text));
        for _ in 0..MAX_ROUNDS {
            let mut functions: Vec<Value> =
                offered.iter().filter_map(|n| tools.function(n)).collect();
            if searchable {
                functions.push(toolset::search_function(tools.len()));
            }
            let (pieces, mut streamed) = mpsc::unbounded_channel::<String>();
            let asked: &[Message] = history;
            let completion = async move {
                // The sender goes when the completion ends, which ends the forwarding.
                let pieces = pieces;
                self.llm
                    .complete(asked, &functions, |piece| {
                        let _ = pieces.send(piece.to_owned());
                    })
                    .await
            };
            // Forward the pieces while the completion streams.
            let forward = async {
                while let Some(piece) = streamed.recv().await {
                    turn.emit(Event::Text { text: piece }).await;
                }
            };
            let (message, ()) = tokio::join!(completion, forward);
            let message = message.map_err(|e| e.to_string())?;
            history.push(message.clone());
            if message.tool_calls.is_empty() {
                return Ok(message.content.unwrap_or_default());
            }
            for call in &message.tool_calls {
                let name = call.function.name.as_str();
                let arguments = match call.function.arguments.trim() {
                    "" => Ok(json!({})),
                    text => serde_json::from_str::<Value>(text),
                };
                let arguments = match arguments {
                    Ok(a) if a.is_object() => a,
                    Ok(_) | Err(_) => {
                        let text = format!(
                            "The arguments of {name} must be a JSON object; got: {}",
                            truncate(&call.function.arguments, 200)
                        );
                        history.push(Message::tool(&call.id, &text));
                        continue;
                    }
                };
                if name == SEARCH_TOOL && searchable {
                    let query = arguments
                        .get("query")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let found = tools.rank(query, 8);
                    let listing: Vec<Value> = found
                        .iter()
                        .filter_map(|n| tools.get(n))
                        .map(|t| json!({"name": t.name, "description": t.description}))
                        .collect();
                    for name in found {
                        if !offered.contains(&name) {
                            offered.push(name);
                        }
                    }
                    let text = if listing.is_empty() {
                        "No tool matches; try other words.".to_owned()
                    } else {
                        format!("These tools are now callable: {}", Value::Array(listing))
                    };
                    history.push(Message::tool(&call.id, &text));
                    continue;
                }
                turn.emit(Event::ToolCall {
                    id: call.id.clone(),
                    name: name.to_owned(),
                    arguments: arguments.clone(),
                })
                .await;
                let (text, is_error) = self.call_tool(&call.id, name, arguments, turn).await;
                turn.emit(Event::ToolResult {
                    id: call.id.clone(),
                    name: name.to_owned(),
                    text: text.clone(),
                    is_error,
                })
                .await;
                let for_model = if is_error {
                    format!("Error: {text}")
                } else {
                    text
                };
                history.push(Message::tool(
                    &call.id,
                    &truncate(&for_model, MAX_RESULT_BYTES),
                ));
            }
        }
        Err(format!(
            "stopped after {MAX_ROUNDS} rounds of tool calls without an answer"
        ))
    }

    /// Runs one tool call through the gateway as the person: its text and whether it failed.
    pub async fn call_tool(
        &self,
        call_id: &str,
        name: &str,
        arguments: Value,
        turn: &Turn<'_>,
    ) -> (String, bool) {
        let Some((server, tool)) = name.split_once(SEPARATOR) else {
            return (
                format!("there is no tool {name:?}: tools are named <server>{SEPARATOR}<tool>"),
                true,
            );
        };
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let handler = Handler {
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            events: turn.events.clone(),
            arguments: arguments.clone(),
            announced: seen.clone(),
        };
        let client = match self.client(server, turn.who, handler).await {
            Ok(c) => c,
            Err(e) => return (e, true),
        };
        let mut params = CallToolRequestParams::new(tool.to_owned());
        params.arguments = arguments.as_object().cloned();
        params.meta = Some(RequestMetaObject::with_progress_token(
            rmcp::model::ProgressToken(rmcp::model::NumberOrString::String(
                uuid::Uuid::new_v4().to_string().into(),
            )),
        ));
        let mut outcome = (String::new(), true);
        for _ in 0..=MAX_INPUT_ROUNDS {
            let response = client.call_tool_once(params.clone()).await;
            match response {
                Ok(CallToolResponse::Complete(result)) => {
                    outcome = result_text(&result);
                    break;
                }
                Ok(CallToolResponse::InputRequired(round)) => {
                    let round = serde_json::to_value(&round).unwrap_or_default();
                    match self
                        .answer_round(call_id, name, &round, &arguments, &seen, turn)
                        .await
                    {
                        Ok(responses) => {
                            params.input_responses = Some(responses);
                            params.request_state = round
                                .get("requestState")
                                .and_then(Value::as_str)
                                .map(str::to_owned);
                        }
                        Err(stopped) => {
                            outcome = (stopped, false);
                            break;
                        }
                    }
                }
                Ok(_) => {
                    outcome = (
                        "the tool answered with a task, which chat does not follow".into(),
                        true,
                    );
                    break;
                }
                Err(rmcp::service::ServiceError::McpError(e)) => {
                    outcome = (e.message.to_string(), true);
                    break;
                }
                Err(e) => {
                    outcome = (format!("the call to {server} failed: {e}"), true);
                    break;
                }
            }
        }
        let _ = client.cancel().await;
        outcome
    }

    /// The person's answers to one `input_required` round, or why the call stops here (a
    /// proposal still waiting, a question nobody answered).
    async fn answer_round(
        &self,
        call_id: &str,
        name: &str,
        round: &Value,
        arguments: &Value,
        announced: &Mutex<HashSet<String>>,
        turn: &Turn<'_>,
    ) -> Result<BTreeMap<String, Value>, String> {
        let state = round
            .get("requestState")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(proposal) = state.strip_prefix(PROPOSAL_STATE) {
            let described = round.pointer(&format!("/_meta/{}", PROPOSAL_META.replace('/', "~1")));
            if let Some(event) = approval_event(call_id, name, described, arguments, announced) {
                turn.emit(event).await;
            }
            let waiting = round
                .pointer(&format!("/inputRequests/{APPROVAL_INPUT}/params/message"))
                .and_then(Value::as_str)
                .unwrap_or("The call is waiting for approval.")
                .to_owned();
            // Wait for the person to decide here (or for anyone to, then check again).
            if self.wait(proposal, turn).await.is_none() {
                return Err(format!(
                    "{} It has not run yet; proposal {proposal} runs once approved.",
                    waiting.trim_end_matches(" Accept to check again.")
                ));
            }
            return Ok(BTreeMap::from([(
                APPROVAL_INPUT.to_owned(),
                json!({"action": "accept", "content": {"check": true}}),
            )]));
        }
        let mut responses = BTreeMap::new();
        let requests = round
            .get("inputRequests")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        for (id, request) in requests {
            if request.get("method").and_then(Value::as_str) != Some("elicitation/create") {
                return Err("the tool asked for something only an IDE can give (sampling or roots); it did not run".into());
            }
            let params = request.get("params").cloned().unwrap_or_default();
            let key = uuid::Uuid::new_v4().to_string();
            turn.emit(Event::Input {
                id: call_id.to_owned(),
                key: key.clone(),
                message: params
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                schema: params.get("requestedSchema").cloned().unwrap_or(json!({})),
            })
            .await;
            let answer = self
                .wait(&key, turn)
                .await
                .unwrap_or_else(|| json!({"action": "cancel"}));
            responses.insert(id, answer);
        }
        Ok(responses)
    }

    /// The person's answer for `key`, if one comes within the wait.
    async fn wait(&self, key: &str, turn: &Turn<'_>) -> Option<Value> {
        if self.config.input_wait.is_zero() {
            return None;
        }
        let answer = turn.answers.expect(key);
        let got = tokio::time::timeout(self.config.input_wait, answer).await;
        turn.answers.forget(key);
        got.ok().and_then(Result::ok)
    }

    /// An MCP client of `server`'s route on the gateway as `who` (2026-07-28).
    async fn client(
        &self,
        server: &str,
        who: &Who,
        handler: Handler,
    ) -> Result<rmcp::service::RunningService<RoleClient, Handler>, String> {
        let token = self.minter.mint(who)?;
        let mut headers = HashMap::new();
        if let Some(channel) = &who.channel
            && let Ok(value) = reqwest::header::HeaderValue::from_str(channel)
        {
            headers.insert(
                reqwest::header::HeaderName::from_static(CHANNEL_HEADER),
                value,
            );
        }
        crate::gateway::connect(handler, &self.config.gateway_url, server, &token, headers)
            .await
            .map_err(|e| format!("could not reach {server} through the gateway: {e}"))
    }
}

/// The approval event for a proposal the gateway described, once per proposal.
fn approval_event(
    call_id: &str,
    name: &str,
    described: Option<&Value>,
    arguments: &Value,
    announced: &Mutex<HashSet<String>>,
) -> Option<Event> {
    let described = described?;
    let proposal = described.get("id")?.as_str()?.to_owned();
    let fresh = announced
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(proposal.clone());
    if !fresh {
        return None;
    }
    let field = |k: &str| {
        described
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(Event::Approval {
        id: call_id.to_owned(),
        proposal,
        tool: name.to_owned(),
        approver: field("approver"),
        arguments: arguments.clone(),
    })
}

/// A tool result as text for the person and the model, and whether it is an error.
fn result_text(result: &CallToolResult) -> (String, bool) {
    let mut parts: Vec<String> = result
        .content
        .iter()
        .filter_map(|c| match c {
            ContentBlock::Text(t) => Some(t.text.clone()),
            ContentBlock::Resource(r) => serde_json::to_string(&r.resource).ok(),
            _ => None,
        })
        .collect();
    if parts.is_empty()
        && let Some(structured) = &result.structured_content
    {
        parts.push(structured.to_string());
    }
    (parts.join("\n"), result.is_error == Some(true))
}

/// The MCP client side of one call: capable of elicitation (so the gateway asks for input in
/// rounds instead of answering "pending"), and listening for the gateway's progress, which names
/// a proposal as soon as it exists.
struct Handler {
    call_id: String,
    name: String,
    events: mpsc::Sender<Event>,
    arguments: Value,
    announced: Arc<Mutex<HashSet<String>>>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        let mut elicitation = ElicitationCapability::new();
        elicitation.form = Some(FormElicitationCapability::default());
        let mut capabilities = ClientCapabilities::default();
        capabilities.elicitation = Some(elicitation);
        let mut info = ClientConfig::default();
        info.capabilities = capabilities;
        info.client_info.name = "switchboard-chat".into();
        info.client_info.version = env!("CARGO_PKG_VERSION").into();
        info
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let described = params.meta.as_ref().and_then(|m| m.get(PROPOSAL_META));
        if let Some(event) = approval_event(
            &self.call_id,
            &self.name,
            described,
            &self.arguments,
            &self.announced,
        ) {
            let _ = self.events.send(event).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_reaches_the_turn_waiting_for_it_and_no_other() {
        let answers = Answers::default();
        let waiting = answers.expect("k1");
        assert!(!answers.give("k2", json!(1)));
        assert!(answers.give("k1", json!({"action": "accept"})));
        assert_eq!(waiting.await.unwrap()["action"], "accept");
        assert!(!answers.give("k1", json!(2)), "an answer is taken once");
    }

    #[test]
    fn a_proposal_is_announced_once() {
        let seen = Mutex::new(HashSet::new());
        let described = json!({"id": "prop-1", "tool": "pause_dag", "approver": "owners"});
        let name = "airflow__pause_dag";
        let first = approval_event("c1", name, Some(&described), &json!({}), &seen).unwrap();
        assert!(
            matches!(first, Event::Approval { ref proposal, ref approver, ref tool, .. } if proposal == "prop-1" && approver == "owners" && tool == name)
        );
        assert!(approval_event("c1", name, Some(&described), &json!({}), &seen).is_none());
        assert!(approval_event("c1", name, None, &json!({}), &seen).is_none());
    }
}
