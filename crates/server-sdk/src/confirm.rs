//! Confirming a dangerous action with the person behind the call, from inside a tool ("Overwrite
//! table ads.daily_spend, 1.2M rows?"), in either protocol era: a 2025-11-25 session asks with
//! `elicitation/create` and waits; a 2026-07-28 call returns an `input_required` result asking the
//! same, and the client calls again with the answer. A client that cannot ask its user gets a
//! clear error ([`CONFIRMATION_REQUIRED`]), never a silent yes; behind the gateway that error
//! becomes a proposal the user approves, and the approved call arrives confirmed (the gateway's
//! signed assertion names the proposal).

use rmcp::{
    ErrorData, RoleServer,
    model::{
        CallToolResponse, ElicitRequestParams, ErrorCode, InputRequiredResult, InputResponses,
        ProtocolVersion,
    },
    service::RequestContext,
};
use serde_json::{Value, json};

/// The input-request key a 2026-07-28 confirmation travels under.
pub const CONFIRM_KEY: &str = "switchboard_confirm";

/// JSON-RPC code of a call that needs a confirmation the client cannot ask for.
pub const CONFIRMATION_REQUIRED: ErrorCode = ErrorCode(-32005);

/// What the person answered.
#[derive(Debug)]
pub enum Confirmation {
    /// Go ahead.
    Confirmed,
    /// Declined or dismissed: do not act.
    Declined,
    /// (2026-07-28) Return this from the tool: the client asks its user and calls again.
    Ask(Box<CallToolResponse>),
}

/// Asks the person behind `ctx` to confirm `question`. `responses` are the call's input
/// responses (2026-07-28 retries carry the answer there).
pub async fn confirm(
    ctx: &RequestContext<RoleServer>,
    responses: Option<&InputResponses>,
    question: &str,
) -> Result<Confirmation, ErrorData> {
    // The gateway runs an approved proposal of this very call: a person already said yes.
    if crate::caller_of(ctx).is_some_and(|c| c.confirmation.is_some()) {
        return Ok(Confirmation::Confirmed);
    }
    if let Some(answer) = responses.and_then(|r| r.get(CONFIRM_KEY)) {
        return Ok(decision(answer));
    }
    let request = json!({
        "message": question,
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {"type": "boolean", "title": "Confirm", "description": question}},
            "required": ["confirm"]
        }
    });
    if !can_ask(ctx) {
        return Err(cannot_ask(question));
    }
    if modern(ctx) {
        let result: InputRequiredResult = serde_json::from_value(json!({
            "resultType": "input_required",
            "inputRequests": {CONFIRM_KEY: {"method": "elicitation/create", "params": request}}
        }))
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        return Ok(Confirmation::Ask(Box::new(result.into())));
    }
    let params: ElicitRequestParams = serde_json::from_value(request)
        .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let answer =
        ctx.peer.create_elicitation(params).await.map_err(|e| {
            ErrorData::internal_error(format!("the confirmation failed: {e}"), None)
        })?;
    Ok(decision(&serde_json::to_value(&answer).unwrap_or_default()))
}

/// Whether the call behind `ctx` runs in the 2026-07-28 era.
fn modern(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.meta
        .protocol_version()
        .is_some_and(|v| v == ProtocolVersion::V_2026_07_28)
}

/// Whether the client behind `ctx` can ask its user (it declared elicitation): when it cannot,
/// [`confirm`] answers [`CONFIRMATION_REQUIRED`].
pub fn can_ask(ctx: &RequestContext<RoleServer>) -> bool {
    if modern(ctx) {
        ctx.meta
            .client_capabilities()
            .is_some_and(|c| c.elicitation.is_some())
    } else {
        ctx.peer
            .peer_info()
            .is_some_and(|info| info.capabilities.elicitation.is_some())
    }
}

/// Confirmed only by an accepted answer saying `confirm: true`.
fn decision(answer: &Value) -> Confirmation {
    let accepted = answer.get("action").and_then(Value::as_str) == Some("accept");
    let yes = answer.pointer("/content/confirm").and_then(Value::as_bool) == Some(true);
    if accepted && yes {
        Confirmation::Confirmed
    } else {
        Confirmation::Declined
    }
}

fn cannot_ask(question: &str) -> ErrorData {
    ErrorData::new(
        CONFIRMATION_REQUIRED,
        format!(
            "this action needs the user's confirmation (\"{question}\"), and the client cannot ask (no elicitation support)"
        ),
        Some(json!({ "confirmation": question })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_accepted_yes_confirms() {
        let confirmed = |v: Value| matches!(decision(&v), Confirmation::Confirmed);
        assert!(confirmed(
            json!({"action": "accept", "content": {"confirm": true}})
        ));
        assert!(!confirmed(
            json!({"action": "accept", "content": {"confirm": false}})
        ));
        assert!(!confirmed(json!({"action": "accept"})));
        assert!(!confirmed(
            json!({"action": "decline", "content": {"confirm": true}})
        ));
        assert!(!confirmed(json!({"action": "cancel"})));
        assert!(!confirmed(json!("yes")));
    }
}
