//! From a server's registered facts to its Cedar policies: the manifest's business-group gating
//! and named tool policies become generated policies, the server's own Cedar text is parsed, and
//! all of them are validated against the server's schema, reporting every problem at once.

use std::{collections::BTreeSet, str::FromStr};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet, ValidationMode, Validator};
use serde_json::Value;

use crate::schema::schema_for;

/// A named tool policy from the manifest: callers must be in one of `groups`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamedPolicy {
    pub name: String,
    pub groups: Vec<String>,
}

/// What the policies need to know about one tool.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolFacts {
    pub name: String,
    /// The tool's `readOnlyHint`, as the registry recorded it.
    pub read_only: bool,
    pub sensitivity: String,
    pub policy: Option<NamedPolicy>,
    /// The tool's JSON Schema, which types the arguments policies may test.
    pub input_schema: Option<Value>,
    /// Whether the tool's current definition is the one its last review approved.
    pub approved: bool,
    /// Who must approve each call before it runs (`self`, `owners`, `group:<name>`), if anyone.
    pub approval: Option<String>,
}

/// What the policies need to know about one server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    pub name: String,
    pub environment: String,
    pub owner_team: String,
    /// Business-group gating: empty means every authenticated caller.
    pub allowed_groups: Vec<String>,
    pub tools: Vec<ToolFacts>,
    /// The server's own Cedar policies (may be empty).
    pub policies: String,
    /// Whether it, and which of its tools, production surfaces may reach.
    pub approval: Approval,
}

/// What production-approval gating needs: whether the server is approved for production, who
/// owns it, and which surfaces count as development (where owners reach what is not approved).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Approval {
    pub approved: bool,
    pub owner_users: Vec<String>,
    pub owner_groups: Vec<String>,
    pub dev_surfaces: Vec<String>,
}

impl Approval {
    /// An approved server (with every tool approved, nothing is gated).
    pub fn approved() -> Approval {
        Approval {
            approved: true,
            ..Approval::default()
        }
    }
}

/// One thing wrong with a policy, named by its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub policy: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.policy, self.message)
    }
}

/// Compiles the server's policies and validates them against its schema. The policies are
/// returned with ids prefixed by the server's name (`presto/server-access`, `presto/<@id>`).
pub fn compile_server(facts: &ServerFacts) -> Result<Vec<Policy>, Vec<Problem>> {
    let s = &facts.name;
    let mut problems = Vec::new();
    let mut policies = Vec::new();
    let mut add = |id: String, text: String, problems: &mut Vec<Problem>| match Policy::parse(
        Some(PolicyId::new(&id)),
        &text,
    ) {
        Ok(p) => policies.push(p),
        Err(e) => problems.push(Problem {
            policy: id,
            message: format!("{e}"),
        }),
    };
    let server = format!("Mcp::Server::{}", quote(s));
    add(
        format!("{s}/connect"),
        format!("permit(principal, action == Mcp::Action::\"connect\", resource == {server});"),
        &mut problems,
    );
    add(
        format!("{s}/open-tools"),
        format!(
            "permit(principal, action in [Mcp::Action::\"list\", Mcp::Action::\"call\"], resource in {server}) \
             when {{ resource.policy == \"\" }};"
        ),
        &mut problems,
    );
    let named: BTreeSet<&NamedPolicy> = facts
        .tools
        .iter()
        .filter_map(|t| t.policy.as_ref())
        .collect();
    for policy in named {
        add(
            format!("{s}/{}", policy.name),
            format!(
                "permit(principal, action in [Mcp::Action::\"list\", Mcp::Action::\"call\"], resource in {server}) \
                 when {{ resource.policy == {} && ({}) }};",
                quote(&policy.name),
                membership(&policy.groups)
            ),
            &mut problems,
        );
    }
    if !facts.allowed_groups.is_empty() {
        add(
            format!("{s}/server-access"),
            format!(
                "forbid(principal, action, resource in {server}) unless {{ {} }};",
                membership(&facts.allowed_groups)
            ),
            &mut problems,
        );
    }
    for tool in &facts.tools {
        if let Some(approver) = &tool.approval {
            add(
                format!("{s}/approval:{}", tool.name),
                format!(
                    "@approval({}) permit(principal, action == Mcp::Action::\"call\", resource == Mcp::Tool::{});",
                    quote(approver),
                    quote(&format!("{s}/{}", tool.name))
                ),
                &mut problems,
            );
        }
    }
    if !facts.approval.approved || facts.tools.iter().any(|t| !t.approved) {
        add(
            format!("{s}/production-approval"),
            format!(
                "forbid(principal, action, resource in {server}) unless {{ resource.approved || {} }};",
                owners_on_dev_surfaces(&facts.approval)
            ),
            &mut problems,
        );
    }
    let mut parse_failed = !problems.is_empty();
    if !facts.policies.trim().is_empty() {
        match parse_named(&facts.policies, s) {
            Ok(custom) => {
                for policy in custom {
                    if let Some(approver) = policy.annotation("approval") {
                        // An approval rule grants nothing; it may read arguments.
                        if policy.effect() != Effect::Permit {
                            problems.push(Problem {
                                policy: policy.id().to_string(),
                                message: "an @approval rule is written as a permit: it says which calls need approval".into(),
                            });
                        }
                        if !catalog::is_approver(approver) {
                            problems.push(Problem {
                                policy: policy.id().to_string(),
                                message: format!("@approval({approver:?}) names no approver: use self, owners or group:<name>"),
                            });
                        }
                    } else if policy.effect() == Effect::Permit && reads_arguments(&policy) {
                        problems.push(Problem {
                            policy: policy.id().to_string(),
                            message: "argument conditions may only restrict: write them as forbid policies, so that \
                                      tools/list shows exactly the tools a caller may call"
                                .into(),
                        });
                    }
                    policies.push(policy);
                }
            }
            Err(mut e) => {
                parse_failed = true;
                problems.append(&mut e);
            }
        }
    }
    // Validate unless something failed to parse, so every other problem is reported at once.
    if !parse_failed {
        match schema_for(&facts.tools) {
            Ok(schema) => problems.extend(validate(&schema, &policies)),
            Err(e) => problems.push(Problem {
                policy: format!("{s}/schema"),
                message: e,
            }),
        }
    }
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(problems)
    }
}

/// Whether a policy's conditions look at the call's arguments.
fn reads_arguments(policy: &Policy) -> bool {
    let text: String = policy.to_string().split_whitespace().collect();
    ["context.args", "contexthasargs", "context[\"args\"]"]
        .iter()
        .any(|p| text.contains(p))
}

/// Parses and validates platform policies (ids prefixed `platform/`).
pub fn validate_platform(text: &str) -> Result<Vec<Policy>, Vec<Problem>> {
    let policies = parse_named(text, "platform")?;
    let schema = schema_for(&[]).map_err(|e| {
        vec![Problem {
            policy: "platform/schema".into(),
            message: e,
        }]
    })?;
    let problems = validate(&schema, &policies);
    if problems.is_empty() {
        Ok(policies)
    } else {
        Err(problems)
    }
}

/// Parses several policies; each keeps its `@id` annotation (or its position) under `prefix/`.
fn parse_named(text: &str, prefix: &str) -> Result<Vec<Policy>, Vec<Problem>> {
    let set = PolicySet::from_str(text).map_err(|e| {
        vec![Problem {
            policy: format!("{prefix}/(policies)"),
            message: format!("{e}"),
        }]
    })?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut problems = Vec::new();
    let mut sorted: Vec<&Policy> = set.policies().collect();
    sorted.sort_by_key(|p| p.id().to_string());
    for (index, policy) in sorted.into_iter().enumerate() {
        let name = policy
            .annotation("id")
            .map(str::to_owned)
            .unwrap_or_else(|| format!("policy{index}"));
        let id = format!("{prefix}/{name}");
        if !seen.insert(id.clone()) {
            problems.push(Problem {
                policy: id,
                message: "two policies have this id".into(),
            });
            continue;
        }
        out.push(policy.new_id(PolicyId::new(&id)));
    }
    if set.templates().next().is_some() {
        problems.push(Problem {
            policy: format!("{prefix}/(templates)"),
            message: "policy templates are not supported".into(),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn validate(schema: &cedar_policy::Schema, policies: &[Policy]) -> Vec<Problem> {
    let mut set = PolicySet::new();
    for p in policies {
        if let Err(e) = set.add(p.clone()) {
            return vec![Problem {
                policy: p.id().to_string(),
                message: format!("{e}"),
            }];
        }
    }
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    // The validator reports a mistake once per action it checks the policy for; say it once.
    let mut seen = BTreeSet::new();
    result
        .validation_errors()
        .map(|e| Problem {
            policy: e.policy_id().to_string(),
            message: without_action(&format!("{e}")),
        })
        .filter(|p| seen.insert((p.policy.clone(), p.message.clone())))
        .collect()
}

/// Drops the ` for Mcp::Action::"..."` detail from a validation message.
fn without_action(message: &str) -> String {
    match message.find(" for Mcp::Action::\"") {
        Some(start) => {
            let rest = &message[start + " for Mcp::Action::\"".len()..];
            let end = rest.find('"').map_or(rest.len(), |i| i + 1);
            format!("{}{}", &message[..start], &rest[end..])
        }
        None => message.to_owned(),
    }
}

/// `principal in Mcp::Group::"a" || principal in Mcp::Group::"b"`.
fn membership(groups: &[String]) -> String {
    if groups.is_empty() {
        return "false".into();
    }
    groups
        .iter()
        .map(|g| format!("principal in Mcp::Group::{}", quote(g)))
        .collect::<Vec<_>>()
        .join(" || ")
}

/// The condition "an owner calling from a development surface", or `false` when nobody could be.
fn owners_on_dev_surfaces(approval: &Approval) -> String {
    let set = |items: Vec<String>| format!("[{}]", items.join(", "));
    let mut owners: Vec<String> = Vec::new();
    if !approval.owner_groups.is_empty() {
        owners.push(format!(
            "principal in {}",
            set(approval
                .owner_groups
                .iter()
                .map(|g| format!("Mcp::Group::{}", quote(g)))
                .collect())
        ));
    }
    if !approval.owner_users.is_empty() {
        owners.push(format!(
            "principal in {}",
            set(approval
                .owner_users
                .iter()
                .map(|u| format!("Mcp::User::{}", quote(u)))
                .collect())
        ));
    }
    if owners.is_empty() || approval.dev_surfaces.is_empty() {
        return "false".into();
    }
    format!(
        "({}.contains(context.surface) && ({}))",
        set(approval.dev_surfaces.iter().map(|d| quote(d)).collect()),
        owners.join(" || ")
    )
}

/// A Cedar string literal.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
