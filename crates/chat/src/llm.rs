//! A client of any OpenAI-compatible chat-completions endpoint (Ollama, vLLM, llama.cpp's server,
//! OpenAI): one streamed completion at a time, its text handed over as it arrives and its tool
//! calls assembled from their fragments. The API key is sent, never logged nor put in an error.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Where the model is.
#[derive(Clone)]
pub struct LlmConfig {
    /// The API base, up to and including `/v1` (e.g. `http://127.0.0.1:11434/v1` for Ollama).
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for LlmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmConfig")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "…"))
            .finish()
    }
}

/// One message of a conversation, in the chat-completions shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    pub fn system(text: &str) -> Message {
        Message::plain("system", text)
    }

    pub fn user(text: &str) -> Message {
        Message::plain("user", text)
    }

    pub fn tool(call_id: &str, text: &str) -> Message {
        Message {
            tool_call_id: Some(call_id.to_owned()),
            ..Message::plain("tool", text)
        }
    }

    fn plain(role: &str, text: &str) -> Message {
        Message {
            role: role.to_owned(),
            content: Some(text.to_owned()),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type", default = "function_type")]
    pub kind: String,
    pub function: FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text, as the model wrote it (it may not parse).
    #[serde(default)]
    pub arguments: String,
}

fn function_type() -> String {
    "function".into()
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LlmError(String);

/// The longest error body from the endpoint quoted in an error.
const QUOTE_BYTES: usize = 500;

pub struct Llm {
    config: LlmConfig,
    http: reqwest::Client,
}

impl Llm {
    pub fn new(config: LlmConfig) -> Llm {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            // A model may think for a while before its first token; not forever.
            .read_timeout(Duration::from_secs(300))
            .build()
            .expect("the HTTP client configuration is static and valid");
        Llm { config, http }
    }

    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// Asks for the next assistant message, streamed: `on_text` gets each piece of text as it
    /// arrives. The message comes back whole, with its tool calls.
    pub async fn complete(
        &self,
        messages: &[Message],
        tools: &[Value],
        mut on_text: impl FnMut(&str),
    ) -> Result<Message, LlmError> {
        let url = format!(
            "{}/chat/completions",
            self.config.base_url.trim_end_matches('/')
        );
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
        });
        if !tools.is_empty() {
            body["tools"] = Value::Array(tools.to_vec());
        }
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| {
            LlmError(format!(
                "could not reach the model at {}: {}",
                self.config.base_url,
                without_url(&e)
            ))
        })?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(LlmError(format!(
                "the model endpoint {} answered {status}: {}",
                self.config.base_url,
                truncate(text.trim(), QUOTE_BYTES)
            )));
        }
        let streamed = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !streamed {
            // Some servers ignore `stream`: take the whole answer.
            let whole: Value = response
                .json()
                .await
                .map_err(|e| LlmError(format!("the model's answer is not JSON: {e}")))?;
            let message = whole
                .pointer("/choices/0/message")
                .cloned()
                .ok_or_else(|| LlmError("the model's answer has no choices[0].message".into()))?;
            let message: Message = serde_json::from_value(message)
                .map_err(|e| LlmError(format!("the model's message is malformed: {e}")))?;
            if let Some(text) = &message.content {
                on_text(text);
            }
            return Ok(assistant(message.content, message.tool_calls));
        }
        let mut reader = Assembler::default();
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let chunk = response
                .chunk()
                .await
                .map_err(|e| LlmError(format!("the model's stream broke: {}", without_url(&e))))?;
            let Some(chunk) = chunk else { break };
            buffer.extend_from_slice(&chunk);
            while let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                if reader.line(line.trim_end(), &mut on_text)? {
                    return Ok(reader.finish());
                }
            }
        }
        let rest = String::from_utf8_lossy(&buffer).into_owned();
        reader.line(rest.trim_end(), &mut on_text)?;
        Ok(reader.finish())
    }
}

fn assistant(content: Option<String>, tool_calls: Vec<ToolCall>) -> Message {
    Message {
        role: "assistant".into(),
        content,
        tool_calls,
        tool_call_id: None,
    }
}

/// Builds one assistant message from the stream's chunks.
#[derive(Default)]
struct Assembler {
    text: String,
    /// Tool calls by their index in the stream.
    calls: std::collections::BTreeMap<u64, ToolCall>,
}

impl Assembler {
    /// Takes one line of the event stream; true when the stream says it is done.
    fn line(&mut self, line: &str, on_text: &mut impl FnMut(&str)) -> Result<bool, LlmError> {
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(false);
        };
        let data = data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let chunk: Value = serde_json::from_str(data)
            .map_err(|e| LlmError(format!("the model sent a malformed chunk: {e}")))?;
        if let Some(error) = chunk.get("error") {
            let message = error
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(LlmError(format!("the model failed: {message}")));
        }
        let Some(delta) = chunk.pointer("/choices/0/delta") else {
            return Ok(false);
        };
        if let Some(text) = delta.get("content").and_then(Value::as_str)
            && !text.is_empty()
        {
            self.text.push_str(text);
            on_text(text);
        }
        for fragment in delta
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let index = fragment.get("index").and_then(Value::as_u64).unwrap_or(0);
            let call = self.calls.entry(index).or_insert_with(|| ToolCall {
                id: String::new(),
                kind: function_type(),
                function: FunctionCall {
                    name: String::new(),
                    arguments: String::new(),
                },
            });
            if let Some(id) = fragment.get("id").and_then(Value::as_str) {
                call.id = id.to_owned();
            }
            if let Some(name) = fragment.pointer("/function/name").and_then(Value::as_str) {
                call.function.name.push_str(name);
            }
            if let Some(args) = fragment
                .pointer("/function/arguments")
                .and_then(Value::as_str)
            {
                call.function.arguments.push_str(args);
            }
        }
        Ok(false)
    }

    fn finish(self) -> Message {
        let calls = self
            .calls
            .into_values()
            .enumerate()
            .map(|(i, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{i}");
                }
                call
            })
            .collect();
        let content = (!self.text.is_empty()).then_some(self.text);
        assistant(content, calls)
    }
}

/// A reqwest error without its URL (which may carry credentials in a query).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    text
}

/// At most `max` bytes of `text`, cut at a character boundary.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_of_text_and_tool_call_fragments_becomes_one_message() {
        let mut seen = String::new();
        let mut a = Assembler::default();
        let lines = [
            r#"data: {"choices":[{"delta":{"role":"assistant","content":"Let me "}}]}"#,
            "",
            r#"data: {"choices":[{"delta":{"content":"look."}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"sql__","arguments":"{\"q"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"run_query","arguments":"\":1}"}}]}}]}"#,
            r#"data: {"choices":[{"delta":{"tool_calls":[{"index":1,"function":{"name":"other","arguments":"{}"}}]}}]}"#,
        ];
        for line in lines {
            assert!(!a.line(line, &mut |t| seen.push_str(t)).unwrap());
        }
        assert!(a.line("data: [DONE]", &mut |_| {}).unwrap());
        let message = a.finish();
        assert_eq!(seen, "Let me look.");
        assert_eq!(message.content.as_deref(), Some("Let me look."));
        assert_eq!(message.tool_calls.len(), 2);
        assert_eq!(message.tool_calls[0].id, "c1");
        assert_eq!(message.tool_calls[0].function.name, "sql__run_query");
        assert_eq!(message.tool_calls[0].function.arguments, r#"{"q":1}"#);
        // A call without an id gets one, so the tool's answer can name it.
        assert_eq!(message.tool_calls[1].id, "call_1");
    }

    #[test]
    fn an_error_chunk_and_a_malformed_chunk_are_clear_errors() {
        let mut a = Assembler::default();
        let e = a
            .line(
                r#"data: {"error":{"message":"model not found"}}"#,
                &mut |_| {},
            )
            .unwrap_err();
        assert_eq!(e.to_string(), "the model failed: model not found");
        let e = a.line("data: {not json", &mut |_| {}).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("the model sent a malformed chunk")
        );
    }

    #[test]
    fn the_key_is_never_printed() {
        let config = LlmConfig {
            base_url: "http://x/v1".into(),
            model: "m".into(),
            api_key: Some("sk-secret".into()),
        };
        assert!(!format!("{config:?}").contains("sk-secret"));
    }
}
