//! What the policy engine needs to know about a registered server, read from its registry view.

use policy::{Approval, Engine, NamedPolicy, Problem, SERVICES_READ_ONLY, ServerFacts, ToolFacts};

use crate::{PlatformPolicies, ServerView};

/// The policy facts of `server`: its gating, its tools (read-only as their `readOnlyHint` says,
/// their named policies and input schemas, whether they are approved), its own Cedar policies,
/// and its production approval with `dev_surfaces` the surfaces where owners reach it before.
pub fn policy_facts(server: &ServerView, dev_surfaces: &[String]) -> ServerFacts {
    ServerFacts {
        name: server.name.clone(),
        environment: server.environment.clone(),
        owner_team: server.owner_team.clone(),
        allowed_groups: server.allowed_groups.clone(),
        tools: server
            .tools
            .iter()
            .map(|tool| ToolFacts {
                name: tool.definition.name.clone(),
                read_only: tool
                    .definition
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("readOnlyHint"))
                    .and_then(serde_json::Value::as_bool)
                    .unwrap_or(false),
                sensitivity: tool.sensitivity.clone(),
                policy: tool.policy.as_ref().map(|p| NamedPolicy {
                    name: p.name.clone(),
                    groups: p.groups.clone(),
                }),
                input_schema: Some(tool.definition.input_schema.clone()),
                approved: tool.approved,
                approval: tool.approval.clone(),
            })
            .collect(),
        policies: server.policies.clone(),
        approval: Approval {
            approved: server.approved,
            owner_users: server.owner_users.clone(),
            owner_groups: server.owner_groups.clone(),
            dev_surfaces: dev_surfaces.to_vec(),
        },
    }
}

/// A server left out of the engine, with why: `(name, problems)`.
pub type Excluded = (String, String);

/// The policy engine over `servers`: the built-in platform policies, then `platform`'s (which
/// must be valid), then each server's slice. Servers whose policies do not compile are left out,
/// so every decision about them is a denial; they are returned with their problems.
pub fn build_engine(
    platform: &PlatformPolicies,
    servers: &[ServerView],
) -> Result<(Engine, Vec<Excluded>), Vec<Problem>> {
    let mut policies = policy::validate_platform(SERVICES_READ_ONLY)?;
    if !platform.policies.trim().is_empty() {
        policies.extend(policy::validate_platform(&platform.policies)?);
    }
    let mut engine = Engine::new(policies);
    let mut broken = Vec::new();
    for server in servers {
        let facts = policy_facts(server, &platform.dev_surfaces);
        let loaded = policy::compile_server(&facts)
            .map_err(|problems| {
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .and_then(|policies| engine.set_server(facts, policies));
        if let Err(problem) = loaded {
            broken.push((server.name.clone(), problem));
        }
    }
    Ok((engine, broken))
}
