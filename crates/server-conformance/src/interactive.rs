//! Fixture tools that need input from the client: multi round-trip requests (`input_required`,
//! SEP-2322) for 2026-07-28 clients, and server-to-client sampling and elicitation requests for
//! 2025-11-25 sessions. Request state is sealed with an HMAC key minted at start-up, so a tampered
//! state is refused.

#![allow(deprecated)] // sampling and roots are deprecated in 2026-07-28 but required by 2025-11-25.

use rmcp::{
    ErrorData, RoleServer,
    handler::server::{
        router::tool::ToolRouter,
        tool::{InputResponses as Responses, RequestState as State},
        wrapper::Parameters,
    },
    model::*,
    service::RequestContext,
    tool, tool_router,
};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::Conformance;

fn elicit(message: &str, properties: Value, required: &[&str]) -> Value {
    json!({
        "method": "elicitation/create",
        "params": { "message": message, "requestedSchema": { "type": "object", "properties": properties, "required": required } }
    })
}

fn sample(text: &str, max_tokens: u32) -> Value {
    json!({
        "method": "sampling/createMessage",
        "params": { "messages": [{ "role": "user", "content": { "type": "text", "text": text } }], "maxTokens": max_tokens }
    })
}

fn roots() -> Value {
    json!({ "method": "roots/list", "params": {} })
}

/// An `input_required` result asking for `requests` (a JSON object of id → request).
fn input_required(requests: Value, state: Option<String>) -> Result<CallToolResponse, ErrorData> {
    let mut result = json!({ "resultType": "input_required", "inputRequests": requests });
    if let Some(state) = state {
        result["requestState"] = Value::String(state);
    }
    let result: InputRequiredResult = serde_json::from_value(result)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    Ok(result.into())
}

fn text(text: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]).into())
}

/// The response for `key`, when present and shaped like an object.
fn response<'a>(responses: &'a Option<InputResponses>, key: &str) -> Option<&'a Value> {
    responses.as_ref()?.get(key).filter(|v| v.is_object())
}

fn elicited(response: &Value, field: &str) -> Option<String> {
    (response.get("action")? == "accept").then(|| {
        response
            .get("content")?
            .get(field)?
            .as_str()
            .map(str::to_owned)
    })?
}

fn sampled_text(response: &Value) -> Option<String> {
    response
        .get("content")?
        .get("text")?
        .as_str()
        .map(str::to_owned)
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct PromptArgs {
    /// The prompt to send to the client's model.
    prompt: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub(crate) struct MessageArgs {
    /// The message to show the user.
    message: String,
}

#[tool_router(router = interactive_tools, vis = "pub(crate)")]
impl Conformance {
    #[tool(description = "Asks for the user's name through an input_required result")]
    async fn test_input_required_result_elicitation(
        &self,
        Responses(responses): Responses,
    ) -> Result<CallToolResponse, ErrorData> {
        match response(&responses, "user_name").and_then(|r| elicited(r, "name")) {
            Some(name) => text(format!("Hello, {name}!")),
            None => input_required(
                json!({ "user_name": elicit("What is your name?", json!({ "name": { "type": "string" } }), &["name"]) }),
                None,
            ),
        }
    }

    #[tool(description = "Asks the client's model a question through an input_required result")]
    async fn test_input_required_result_sampling(
        &self,
        Responses(responses): Responses,
    ) -> Result<CallToolResponse, ErrorData> {
        match response(&responses, "capital_question").and_then(sampled_text) {
            Some(answer) => text(format!("Sampling response: {answer}")),
            None => input_required(
                json!({ "capital_question": sample("What is the capital of France?", 100) }),
                None,
            ),
        }
    }

    #[tool(description = "Asks for the client's roots through an input_required result")]
    async fn test_input_required_result_list_roots(
        &self,
        Responses(responses): Responses,
    ) -> Result<CallToolResponse, ErrorData> {
        match response(&responses, "client_roots")
            .and_then(|r| r.get("roots"))
            .and_then(Value::as_array)
        {
            Some(roots) => {
                let uris: Vec<&str> = roots
                    .iter()
                    .filter_map(|r| r.get("uri").and_then(Value::as_str))
                    .collect();
                text(format!("Roots: {}", uris.join(", ")))
            }
            None => input_required(json!({ "client_roots": roots() }), None),
        }
    }

    #[tool(description = "Round-trips a sealed request state")]
    async fn test_input_required_result_request_state(
        &self,
        Responses(responses): Responses,
        State(state): State,
    ) -> Result<CallToolResponse, ErrorData> {
        if response(&responses, "confirm").is_some() {
            let opened = self.open_state(state.as_deref())?;
            if opened == json!({ "tool": "request_state" }) {
                return text("state-ok: the request state was received and validated");
            }
            return Err(ErrorData::invalid_params(
                "requestState belongs to another request",
                None,
            ));
        }
        let state = self.seal_state(&json!({ "tool": "request_state" }))?;
        input_required(
            json!({ "confirm": elicit("Please confirm", json!({ "ok": { "type": "boolean" } }), &["ok"]) }),
            Some(state),
        )
    }

    #[tool(description = "Asks for several inputs at once")]
    async fn test_input_required_result_multiple_inputs(
        &self,
        Responses(responses): Responses,
        State(state): State,
    ) -> Result<CallToolResponse, ErrorData> {
        let all = ["user_name", "greeting", "client_roots"];
        if all.iter().all(|k| response(&responses, k).is_some()) {
            self.open_state(state.as_deref())?;
            let name = response(&responses, "user_name")
                .and_then(|r| elicited(r, "name"))
                .unwrap_or_default();
            let greeting = response(&responses, "greeting")
                .and_then(sampled_text)
                .unwrap_or_default();
            return text(format!(
                "All inputs received: name={name}, greeting={greeting}"
            ));
        }
        let requests = json!({
            "user_name": elicit("What is your name?", json!({ "name": { "type": "string" } }), &["name"]),
            "greeting": sample("Generate a greeting", 50),
            "client_roots": roots(),
        });
        input_required(
            requests,
            Some(self.seal_state(&json!({ "tool": "multiple_inputs" }))?),
        )
    }

    #[tool(description = "Needs two rounds of input")]
    async fn test_input_required_result_multi_round(
        &self,
        Responses(responses): Responses,
        State(state): State,
    ) -> Result<CallToolResponse, ErrorData> {
        if let Some(color) = response(&responses, "step2").and_then(|r| elicited(r, "color")) {
            let opened = self.open_state(state.as_deref())?;
            let name = opened
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return text(format!("Hello {name}, your favorite color is {color}"));
        }
        if let Some(name) = response(&responses, "step1").and_then(|r| elicited(r, "name")) {
            self.open_state(state.as_deref())?;
            let state = self.seal_state(&json!({ "round": 2, "name": name }))?;
            let request = elicit(
                "Step 2: What is your favorite color?",
                json!({ "color": { "type": "string" } }),
                &["color"],
            );
            return input_required(json!({ "step2": request }), Some(state));
        }
        let request = elicit(
            "Step 1: What is your name?",
            json!({ "name": { "type": "string" } }),
            &["name"],
        );
        input_required(
            json!({ "step1": request }),
            Some(self.seal_state(&json!({ "round": 1 }))?),
        )
    }

    #[tool(description = "Refuses a request state that was tampered with")]
    async fn test_input_required_result_tampered_state(
        &self,
        Responses(responses): Responses,
        State(state): State,
    ) -> Result<CallToolResponse, ErrorData> {
        if responses.is_some() {
            self.open_state(state.as_deref())?;
            return text("state verified");
        }
        let request = elicit(
            "Please confirm",
            json!({ "ok": { "type": "boolean" } }),
            &["ok"],
        );
        input_required(
            json!({ "confirm": request }),
            Some(self.seal_state(&json!({ "tool": "tampered_state" }))?),
        )
    }

    #[tool(description = "Only asks for inputs the client declared it can provide")]
    async fn test_input_required_result_capabilities(
        &self,
        ctx: RequestContext<RoleServer>,
        Responses(responses): Responses,
    ) -> Result<CallToolResponse, ErrorData> {
        if responses.as_ref().is_some_and(|r| !r.is_empty()) {
            return text("inputs received");
        }
        let capabilities = ctx.client_capabilities().unwrap_or_default();
        let mut requests = serde_json::Map::new();
        if capabilities.elicitation.is_some() {
            requests.insert(
                "user_name".into(),
                elicit(
                    "What is your name?",
                    json!({ "name": { "type": "string" } }),
                    &["name"],
                ),
            );
        }
        if capabilities.sampling.is_some() {
            requests.insert("greeting".into(), sample("Generate a greeting", 50));
        }
        if capabilities.roots.is_some() {
            requests.insert("client_roots".into(), roots());
        }
        if requests.is_empty() {
            return text("the client declared no capability this tool could use");
        }
        input_required(Value::Object(requests), None)
    }

    #[tool(description = "Needs the sampling capability, which the request must declare")]
    async fn test_missing_capability(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let declared = ctx
            .client_capabilities()
            .is_some_and(|c| c.sampling.is_some());
        if !declared {
            return Err(ErrorData::missing_required_client_capability(
                ClientCapabilities::builder().enable_sampling().build(),
            ));
        }
        text("the client declared sampling")
    }

    #[tool(
        description = "Asks for input on the call's own response (never a separate server request)"
    )]
    async fn test_streaming_elicitation(
        &self,
        Responses(responses): Responses,
    ) -> Result<CallToolResponse, ErrorData> {
        match response(&responses, "answer").and_then(|r| elicited(r, "answer")) {
            Some(answer) => text(format!("You answered {answer}")),
            None => input_required(
                json!({ "answer": elicit("Anything to add?", json!({ "answer": { "type": "string" } }), &["answer"]) }),
                None,
            ),
        }
    }

    #[tool(description = "Logs only when the request asked for a log level")]
    async fn test_logging_tool(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let meta = serde_json::to_value(&ctx.meta).unwrap_or_default();
        if meta.get("io.modelcontextprotocol/logLevel").is_some() {
            let message = LoggingMessageNotificationParam::new(
                LoggingLevel::Info,
                json!("test_logging_tool ran"),
            );
            let _ = ctx.peer.notify_logging_message(message).await;
        }
        text("logging tool done")
    }

    #[tool(
        description = "Asks the client's model through sampling/createMessage (2025-11-25 sessions)"
    )]
    async fn test_sampling(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(args): Parameters<PromptArgs>,
    ) -> Result<CallToolResponse, ErrorData> {
        let params: CreateMessageRequestParams =
            serde_json::from_value(sample(&args.prompt, 100)["params"].clone())
                .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        let result = ctx
            .peer
            .create_message(params)
            .await
            .map_err(|e| ErrorData::internal_error(format!("sampling failed: {e}"), None))?;
        let reply = serde_json::to_value(&result)
            .ok()
            .and_then(|v| sampled_text(&v))
            .unwrap_or_default();
        text(format!("LLM response: {reply}"))
    }

    #[tool(description = "Asks the user through elicitation/create (2025-11-25 sessions)")]
    async fn test_elicitation(
        &self,
        ctx: RequestContext<RoleServer>,
        Parameters(args): Parameters<MessageArgs>,
    ) -> Result<CallToolResponse, ErrorData> {
        let properties = json!({
            "username": { "type": "string", "description": "User's response" },
            "email": { "type": "string", "description": "User's email address" },
        });
        let result = legacy_elicit(&ctx, &args.message, properties, &["username", "email"]).await?;
        text(format!(
            "User response: <action: {}, content: {}>",
            result.0, result.1
        ))
    }

    #[tool(description = "Elicits a form whose fields all carry defaults (SEP-1034)")]
    async fn test_elicitation_sep1034_defaults(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let properties = json!({
            "name": { "type": "string", "default": "John Doe" },
            "age": { "type": "integer", "default": 30 },
            "score": { "type": "number", "default": 95.5 },
            "status": { "type": "string", "enum": ["active", "inactive", "pending"], "default": "active" },
            "verified": { "type": "boolean", "default": true },
        });
        let (action, content) = legacy_elicit(
            &ctx,
            "Please review and update the form fields with defaults",
            properties,
            &[],
        )
        .await?;
        text(format!(
            "Elicitation completed: action={action}, content={content}"
        ))
    }

    #[tool(description = "Elicits every enum variant (SEP-1330)")]
    async fn test_elicitation_sep1330_enums(
        &self,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let properties = json!({
            "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
            "titledSingle": { "type": "string", "oneOf": [
                { "const": "value1", "title": "First Option" },
                { "const": "value2", "title": "Second Option" },
                { "const": "value3", "title": "Third Option" } ] },
            "legacyEnum": { "type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"] },
            "untitledMulti": { "type": "array", "items": { "type": "string", "enum": ["option1", "option2", "option3"] } },
            "titledMulti": { "type": "array", "items": { "anyOf": [
                { "const": "value1", "title": "First Choice" },
                { "const": "value2", "title": "Second Choice" },
                { "const": "value3", "title": "Third Choice" } ] } },
        });
        let (action, content) = legacy_elicit(
            &ctx,
            "Please choose from every kind of enum",
            properties,
            &[],
        )
        .await?;
        text(format!(
            "Elicitation completed: action={action}, content={content}"
        ))
    }
}

/// A server-to-client `elicitation/create` on a 2025-11-25 session: (action, content JSON).
async fn legacy_elicit(
    ctx: &RequestContext<RoleServer>,
    message: &str,
    properties: Value,
    required: &[&str],
) -> Result<(String, String), ErrorData> {
    let params: ElicitRequestParams =
        serde_json::from_value(elicit(message, properties, required)["params"].clone())
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let result = ctx
        .peer
        .create_elicitation(params)
        .await
        .map_err(|e| ErrorData::internal_error(format!("elicitation failed: {e}"), None))?;
    let value = serde_json::to_value(&result).unwrap_or_default();
    let action = value
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_owned();
    let content = value
        .get("content")
        .cloned()
        .unwrap_or(Value::Null)
        .to_string();
    Ok((action, content))
}

impl Conformance {
    /// Every interactive fixture tool.
    pub(crate) fn interactive() -> ToolRouter<Conformance> {
        Self::interactive_tools()
    }

    fn seal_state(&self, value: &Value) -> Result<String, ErrorData> {
        self.codec
            .seal_json(value)
            .map_err(|e| ErrorData::internal_error(format!("seal request state: {e}"), None))
    }

    /// Opens a request state; a missing or tampered state is the client's error.
    fn open_state(&self, state: Option<&str>) -> Result<Value, ErrorData> {
        let state = state.ok_or_else(|| {
            ErrorData::invalid_params("requestState is required on this round", None)
        })?;
        let bytes = self.codec.open(state).map_err(|_| {
            ErrorData::invalid_params("requestState failed its integrity check", None)
        })?;
        serde_json::from_slice(&bytes)
            .map_err(|_| ErrorData::invalid_params("requestState is not valid", None))
    }
}
