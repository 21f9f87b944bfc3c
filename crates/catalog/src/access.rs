//! Access decisions: may this caller use this server, may it call this tool. A denial is a value
//! with a reason a person can read, never an error.

/// An authenticated caller: a person (from their JWT) or a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    pub groups: Vec<String>,
}

/// Parses a comma-separated group list (`"finance, ads-eng"`), dropping empty entries.
pub fn parse_groups(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Principal {
    pub fn in_any(&self, groups: &[String]) -> bool {
        groups
            .iter()
            .any(|g| self.groups.iter().any(|mine| mine == g))
    }
}

/// The access-relevant facts about a server.
#[derive(Debug, Clone, Copy)]
pub struct ServerAccess<'a> {
    pub name: &'a str,
    /// Empty means every authenticated caller.
    pub allowed_groups: &'a [String],
}

/// The access-relevant facts about one tool.
#[derive(Debug, Clone, Copy)]
pub struct ToolAccess<'a> {
    pub name: &'a str,
    /// The named policy the tool is guarded by, and the groups that policy admits.
    pub policy: Option<(&'a str, &'a [String])>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow {
        reason: String,
    },
    Deny {
        reason: String,
        policy: Option<String>,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            Decision::Allow { reason } | Decision::Deny { reason, .. } => reason,
        }
    }
}

/// Business-group gating: may `who` use `server` at all?
pub fn decide_server(who: &Principal, server: ServerAccess<'_>) -> Decision {
    if server.allowed_groups.is_empty() {
        return Decision::Allow {
            reason: format!(
                "server {} is open to every authenticated caller",
                server.name
            ),
        };
    }
    match server
        .allowed_groups
        .iter()
        .find(|g| who.groups.iter().any(|mine| mine == *g))
    {
        Some(group) => Decision::Allow {
            reason: format!(
                "{} is in group {group}, which may use server {}",
                who.user, server.name
            ),
        },
        None => Decision::Deny {
            reason: format!(
                "server {} is restricted to groups [{}] and {} is in none of them",
                server.name,
                server.allowed_groups.join(", "),
                who.user
            ),
            policy: None,
        },
    }
}

/// May `who` call `tool` on `server`? Server gating applies first, then the tool's named policy.
pub fn decide_tool(who: &Principal, server: ServerAccess<'_>, tool: ToolAccess<'_>) -> Decision {
    let server_decision = decide_server(who, server);
    if !server_decision.is_allowed() {
        return server_decision;
    }
    match tool.policy {
        None => Decision::Allow {
            reason: format!("tool {} has no policy beyond server access", tool.name),
        },
        Some((policy, groups)) if who.in_any(groups) => Decision::Allow {
            reason: format!("{} satisfies policy {policy}", who.user),
        },
        Some((policy, groups)) => Decision::Deny {
            reason: format!(
                "policy {policy} on tool {} requires one of groups [{}]",
                tool.name,
                groups.join(", ")
            ),
            policy: Some(policy.to_owned()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(groups: &[&str]) -> Principal {
        Principal {
            user: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn check(groups: &[&str], server_groups: &[&str], policy: Option<&[&str]>, expected: &str) {
        let server_groups: Vec<String> = server_groups.iter().map(|g| g.to_string()).collect();
        let policy_groups: Option<Vec<String>> =
            policy.map(|p| p.iter().map(|g| g.to_string()).collect());
        let decision = decide_tool(
            &who(groups),
            ServerAccess {
                name: "presto",
                allowed_groups: &server_groups,
            },
            ToolAccess {
                name: "revenue",
                policy: policy_groups.as_deref().map(|g| ("revenue-readers", g)),
            },
        );
        let got = match &decision {
            Decision::Allow { reason } => format!("allow: {reason}"),
            Decision::Deny { reason, policy } => format!("deny ({policy:?}): {reason}"),
        };
        assert_eq!(got, expected);
    }

    #[test]
    fn decisions() {
        check(
            &[],
            &[],
            None,
            "allow: tool revenue has no policy beyond server access",
        );
        check(
            &["eng"],
            &["finance", "ads-eng"],
            None,
            "deny (None): server presto is restricted to groups [finance, ads-eng] and alice is in none of them",
        );
        check(
            &["ads-eng"],
            &["finance", "ads-eng"],
            Some(&["ads-eng"]),
            "allow: alice satisfies policy revenue-readers",
        );
        check(
            &["finance"],
            &["finance", "ads-eng"],
            Some(&["ads-eng"]),
            "deny (Some(\"revenue-readers\")): policy revenue-readers on tool revenue requires one of groups [ads-eng]",
        );
    }
}
