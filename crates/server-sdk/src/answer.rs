//! The two shapes of a tool's answer: a failure the model reads, and a structured result (for
//! tools with an output schema) with the text the model reads beside it.

use rmcp::{
    ErrorData,
    model::{CallToolResult, ContentBlock},
};
use serde::Serialize;

/// A tool's failure, as the result the model reads.
pub fn failure(message: impl std::fmt::Display) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.to_string())])
}

/// A structured result with `text` as what the model reads.
pub fn answer<T: Serialize>(value: &T, text: String) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(value)
        .map_err(|e| ErrorData::internal_error(format!("encode the result: {e}"), None))?;
    let mut result = CallToolResult::structured(value);
    result.content = vec![ContentBlock::text(text)];
    Ok(result)
}
