//! Previews of calls that need approval: before the gateway proposes a call of a tool whose
//! manifest says `preview = true`, it sends the call itself with [`PREVIEW_KEY`] set in the
//! request `_meta`. The tool then works out what the call would do (and may confirm it with the
//! user, [`crate::confirm`]) without doing it, and answers with [`result`]; the gateway attaches
//! that answer to the proposal, so the approvers see what would change. The approved call arrives
//! later without the key and carrying the proposal ([`crate::Caller::confirmation`]).

use rmcp::{
    RoleServer,
    model::{CallToolResult, ContentBlock, MetaObject},
    service::RequestContext,
};
use serde_json::Value;

/// The request `_meta` key of a preview, and the result `_meta` key of its answer.
pub const PREVIEW_KEY: &str = "dev.switchboard/preview";

/// Whether the call behind `ctx` asks for a preview (the tool must not act).
pub fn requested(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.meta.get(PREVIEW_KEY).and_then(Value::as_bool) == Some(true)
}

/// A preview's answer: `summary` for people and the model, `details` (structured) for the
/// proposal.
pub fn result(summary: &str, details: Value) -> CallToolResult {
    let mut result = CallToolResult::success(vec![ContentBlock::text(summary)]);
    let mut meta = serde_json::Map::new();
    meta.insert(
        PREVIEW_KEY.into(),
        serde_json::json!({ "summary": summary, "details": details }),
    );
    result.meta = Some(MetaObject(meta));
    result
}
