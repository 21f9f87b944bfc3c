//! Previews of calls that need approval: before the gateway proposes a call of a tool whose
//! manifest says `preview = true`, it sends the call itself with [`PREVIEW_KEY`] set in the
//! request `_meta`. The tool then works out what the call would do (and may confirm it with the
//! user, [`crate::confirm`]) without doing it, and answers with [`result`]; the gateway attaches
//! that answer to the proposal, so the approvers see what would change. The approved call arrives
//! later without the key and carrying the proposal ([`crate::Caller::confirmation`]).

use rmcp::{
    ErrorData, RoleServer,
    model::{CallToolResponse, CallToolResult, ContentBlock, InputResponses, MetaObject},
    service::RequestContext,
};

use crate::Confirmation;
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

/// The approved proposal this call runs under, when it is not a preview: the gateway sends an
/// approved call with its signed assertion naming the proposal. A tool that needs approval acts
/// only when this is `Some`.
pub fn approved(ctx: &RequestContext<RoleServer>) -> Option<String> {
    if requested(ctx) {
        return None;
    }
    crate::caller_of(ctx).and_then(|c| c.confirmation)
}

/// The answer to a preview request ([`requested`]) of a call that would do `summary`: where the
/// client can ask its user, first a confirmation ("`summary`. Propose this for approval?"); a
/// declined one answers an error and nothing is proposed. Then the preview itself, which the
/// gateway attaches to the proposal for its approvers.
pub async fn propose(
    ctx: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    summary: &str,
    details: Value,
) -> Result<CallToolResponse, ErrorData> {
    if crate::can_ask(ctx) {
        let question = format!("{summary}. Propose this for approval?");
        match crate::confirm(ctx, responses, &question).await? {
            Confirmation::Confirmed => {}
            Confirmation::Declined => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                    "you declined: nothing was proposed and nothing changed ({summary})"
                ))])
                .into());
            }
            Confirmation::Ask(round) => return Ok(*round),
        }
    }
    Ok(result(summary, details).into())
}

/// The answer to a call of `tool` that needs approval but arrived neither as a preview nor as
/// an approved proposal (not through the gateway): nothing is done.
pub fn unapproved(tool: &str, summary: &str) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(format!(
        "{tool} changes things, so it runs only as an approved proposal: call it through the Switchboard gateway, which asks for approval ({summary})"
    ))])
}
