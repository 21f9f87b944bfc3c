//! What the registry's endpoints do, apart from HTTP: access answers and discovery, computed from
//! the stored catalog with the shared rules in `catalog`.

use catalog::{Decision, Principal, ServerAccess, ToolAccess, decide_server, decide_tool};
use registry_api::{AccessAnswer, DiscoveredServer, ServerView, ToolView};

/// The path of a server's MCP route on the gateway.
pub(crate) fn gateway_path(server: &str) -> String {
    format!("/servers/{server}/mcp")
}

pub(crate) fn server_access(server: &ServerView) -> ServerAccess<'_> {
    ServerAccess {
        name: &server.name,
        allowed_groups: &server.allowed_groups,
    }
}

pub(crate) fn tool_access(tool: &ToolView) -> ToolAccess<'_> {
    ToolAccess {
        name: &tool.definition.name,
        policy: tool
            .policy
            .as_ref()
            .map(|p| (p.name.as_str(), p.groups.as_slice())),
    }
}

pub(crate) fn answer(decision: Decision) -> AccessAnswer {
    match decision {
        Decision::Allow { reason } => AccessAnswer {
            allowed: true,
            reason,
            policy: None,
        },
        Decision::Deny { reason, policy } => AccessAnswer {
            allowed: false,
            reason,
            policy,
        },
    }
}

/// May `who` use `server`, or when `tool` is given, call that tool?
pub(crate) fn access(who: &Principal, server: &ServerView, tool: Option<&str>) -> AccessAnswer {
    match tool {
        None => answer(decide_server(who, server_access(server))),
        Some(name) => match server.tools.iter().find(|t| t.definition.name == name) {
            Some(tool) => answer(decide_tool(who, server_access(server), tool_access(tool))),
            None => AccessAnswer {
                allowed: false,
                reason: format!("server {} has no tool named {name}", server.name),
                policy: None,
            },
        },
    }
}

/// The servers `who` may use, each with only the tools `who` may call.
pub(crate) fn discover(who: &Principal, servers: Vec<ServerView>) -> Vec<DiscoveredServer> {
    servers
        .into_iter()
        .filter(|s| decide_server(who, server_access(s)).is_allowed())
        .map(|s| {
            let tools = s
                .tools
                .iter()
                .filter(|t| decide_tool(who, server_access(&s), tool_access(t)).is_allowed())
                .cloned()
                .collect();
            DiscoveredServer {
                gateway_path: gateway_path(&s.name),
                name: s.name,
                title: s.title,
                description: s.description,
                owner_team: s.owner_team,
                support_channel: s.support_channel,
                environment: s.environment,
                tools,
            }
        })
        .collect()
}
