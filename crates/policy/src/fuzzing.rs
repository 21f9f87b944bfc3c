//! Entry points for the fuzz targets under `fuzz/`: what reaches the policy engine from outside,
//! namely a caller's identity, surface, channel, tool name and arguments on every call, and a
//! server owner's own Cedar policies on registration. Each must return, never panic.

use std::sync::OnceLock;

use serde_json::{Value, json};

use crate::{
    Action, Approval, Engine, NamedPolicy, Principal, Request, SERVICES_READ_ONLY, ServerFacts,
    ToolFacts, compile_server, validate_platform,
};

const OWNER_POLICIES: &str = r#"@id("finance-tables") forbid(principal, action == Mcp::Action::"call", resource in Mcp::Server::"finance")
    when { context has args && context.args has table && context.args.table like "finance.*" }
    unless { principal in Mcp::Group::"finance" };
@id("bot-channel") forbid(principal, action, resource in Mcp::Server::"finance")
    when { context.surface == "bot" && !(context has channel && context.channel == "finance-help") };"#;

fn facts(policies: &str) -> ServerFacts {
    let tool = |name: &str, read_only: bool, policy: Option<NamedPolicy>| ToolFacts {
        name: name.into(),
        read_only,
        sensitivity: "high".into(),
        policy,
        input_schema: Some(json!({"type": "object", "properties": {
            "table": {"type": "string"}, "limit": {"type": "integer"}, "tags": {"type": "array"}}})),
        approved: true,
        approval: Some("finance-leads".into()),
    };
    ServerFacts {
        name: "finance".into(),
        environment: "prod".into(),
        owner_team: "finance-eng".into(),
        allowed_groups: vec!["finance".into(), "employees".into()],
        tools: vec![
            tool("query", true, None),
            tool(
                "post_entry",
                false,
                Some(NamedPolicy {
                    name: "leads".into(),
                    groups: vec!["finance-leads".into()],
                }),
            ),
        ],
        policies: policies.into(),
        approval: Approval::approved(),
    }
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut engine = Engine::new(validate_platform(SERVICES_READ_ONLY).expect("built in"));
        let facts = facts(OWNER_POLICIES);
        let policies = compile_server(&facts).expect("valid policies");
        engine.set_server(facts, policies).expect("loaded");
        engine
    })
}

/// One call's input: JSON `{"user", "groups", "service", "tool", "surface", "channel",
/// "args"}` when the bytes are such an object, else the bytes as text in every field.
pub fn decide(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let input: Value = serde_json::from_slice(data).unwrap_or_else(|_| {
        json!({"user": text, "groups": [text], "tool": text, "surface": text,
               "channel": text, "args": {"table": text}})
    });
    let field = |k: &str| input.get(k).and_then(Value::as_str).unwrap_or_default();
    let groups: Vec<String> = input
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| {
            g.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let principal = if input.get("service").and_then(Value::as_bool) == Some(true) {
        Principal::Service {
            id: field("user").into(),
            groups,
        }
    } else {
        Principal::User {
            id: field("user").into(),
            groups,
        }
    };
    let args = input.get("args").cloned();
    let channel = input.get("channel").and_then(Value::as_str);
    for action in [Action::Connect, Action::List, Action::Call] {
        let request = Request {
            principal: &principal,
            action,
            server: "finance",
            tool: Some(field("tool")),
            surface: field("surface"),
            channel,
            args: args.as_ref(),
        };
        let verdict = engine().decide(&request);
        let _ = verdict.denial_message();
        let _ = engine().approval(&request);
    }
}

/// A server owner's Cedar policies, as registration validates and loads them, and the same
/// text as platform policies.
pub fn owner_policies(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = validate_platform(&text);
    let facts = facts(&text);
    if let Ok(policies) = compile_server(&facts) {
        let mut engine = Engine::new(Vec::new());
        let _ = engine.set_server(facts, policies);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_entries_survive_mangled_input() {
        let calls: [&[u8]; 3] = [
            br#"{"user":"alice","groups":["finance"],"tool":"query","surface":"bot","channel":"finance-help","args":{"table":"finance.ledger","limit":10}}"#,
            br#"{"user":"spiffe://x/y","service":true,"groups":[],"tool":"post_entry","surface":"api","args":[1,{"table":null}]}"#,
            b"finance.\xff\x00 like \"*\"",
        ];
        for input in catalog::fuzzing::mutations(&calls, 1_500, 0x5eed) {
            decide(&input);
        }
        let policies: [&[u8]; 2] = [
            OWNER_POLICIES.as_bytes(),
            br#"permit(principal in Mcp::Group::"a", action, resource) when { context.args.x.y.z == 1 };"#,
        ];
        for input in catalog::fuzzing::mutations(&policies, 300, 0x5eed) {
            owner_policies(&input);
        }
    }
}
