//! What the registry's endpoints decide, apart from HTTP: access answers, discovery and policy
//! explanations, all from the one policy engine the gateway uses too.

use policy::{Action, Engine, Principal, Problem, Request, Verdict};
use registry_api::{AccessAnswer, DiscoveredServer, PolicyAnswer, ServerView};

/// The path of a server's MCP route on the gateway.
pub(crate) fn gateway_path(server: &str) -> String {
    format!("/servers/{server}/mcp")
}

pub(crate) fn describe(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// May `who`, from `surface`, connect to `server` or (with `tool`) see and call that tool?
pub(crate) fn access(
    engine: &Engine,
    who: &Principal,
    server: &str,
    tool: Option<&str>,
    surface: &str,
) -> AccessAnswer {
    let verdict = decide(engine, who, server, tool, surface, None, None);
    AccessAnswer {
        allowed: verdict.allowed,
        policy: verdict.policies.first().cloned(),
        reason: verdict.reason,
    }
}

/// The full decision, with the deciding policies: connect without a tool; listing with a tool but
/// no arguments; calling with arguments.
pub(crate) fn decide(
    engine: &Engine,
    who: &Principal,
    server: &str,
    tool: Option<&str>,
    surface: &str,
    channel: Option<&str>,
    args: Option<&serde_json::Value>,
) -> Verdict {
    let request = Request {
        principal: who,
        action: Action::Connect,
        server,
        tool,
        surface,
        channel,
        args,
    };
    match (tool, args) {
        (None, _) => engine.decide(&request),
        (Some(_), None) => engine.visible(&request),
        (Some(_), Some(_)) => engine.callable(&request),
    }
}

pub(crate) fn answer(verdict: Verdict) -> PolicyAnswer {
    PolicyAnswer {
        allowed: verdict.allowed,
        policies: verdict.policies,
        reason: verdict.reason,
        approval: None,
        approval_policies: Vec::new(),
    }
}

/// The servers `who` may connect to from `surface` (in a bot's `channel`), each with only the
/// tools `who` may call there.
pub(crate) fn discover(
    engine: &Engine,
    who: &Principal,
    surface: &str,
    channel: Option<&str>,
    servers: &[ServerView],
) -> Vec<DiscoveredServer> {
    servers
        .iter()
        .filter(|s| decide(engine, who, &s.name, None, surface, channel, None).allowed)
        .map(|s| {
            let tools = s
                .tools
                .iter()
                .filter(|t| {
                    decide(
                        engine,
                        who,
                        &s.name,
                        Some(&t.definition.name),
                        surface,
                        channel,
                        None,
                    )
                    .allowed
                })
                .cloned()
                .collect();
            DiscoveredServer {
                gateway_path: gateway_path(&s.name),
                name: s.name.clone(),
                title: s.title.clone(),
                description: s.description.clone(),
                owner_team: s.owner_team.clone(),
                support_channel: s.support_channel.clone(),
                environment: s.environment.clone(),
                tools,
            }
        })
        .collect()
}
