//! Deciding: the per-server policy slices, and one Cedar authorization per question over the
//! entities of the request (the principal and its groups, the server, the tool).

use std::collections::{BTreeSet, HashMap, HashSet};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicySet, RestrictedExpression,
};
use serde_json::{Map, Value, json};

use crate::{ServerFacts, ToolFacts};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A person, from their token.
    User { id: String, groups: Vec<String> },
    /// A workload with no person in the loop, from its SPIFFE ID.
    Service { id: String, groups: Vec<String> },
}

impl Principal {
    fn groups(&self) -> &[String] {
        match self {
            Principal::User { groups, .. } | Principal::Service { groups, .. } => groups,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Open a session with a server.
    Connect,
    /// See a tool in `tools/list`.
    List,
    /// Call a tool.
    Call,
}

impl Action {
    fn id(self) -> &'static str {
        match self {
            Action::Connect => "connect",
            Action::List => "list",
            Action::Call => "call",
        }
    }
}

/// One question to the engine.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub principal: &'a Principal,
    pub action: Action,
    pub server: &'a str,
    /// Required for `List` and `Call`.
    pub tool: Option<&'a str>,
    /// Where the call comes from: `web-chat`, `bot`, `ide`, `api`, ...
    pub surface: &'a str,
    /// The bot channel, when the surface is a chat bot.
    pub channel: Option<&'a str>,
    /// The call's arguments (`Call` only); absent when listing.
    pub args: Option<&'a Value>,
}

/// An answer, with the policies that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Ids of the deciding policies: the permits that allowed, or the forbids (or the named policy
    /// that did not permit) that denied.
    pub policies: Vec<String>,
    pub reason: String,
    /// Policies that failed to evaluate (they are ignored, as Cedar does).
    pub errors: Vec<String>,
}

impl Verdict {
    fn deny(reason: String, policies: Vec<String>) -> Verdict {
        Verdict {
            allowed: false,
            policies,
            reason,
            errors: Vec::new(),
        }
    }
}

/// The loaded policies: platform-wide ones, and a slice per server.
#[derive(Default)]
pub struct Engine {
    platform: Vec<Policy>,
    servers: HashMap<String, Slice>,
    authorizer: Authorizer,
}

struct Slice {
    facts: ServerFacts,
    /// The platform's policies and this server's, together.
    policies: PolicySet,
    tools: HashMap<String, usize>,
}

impl Engine {
    pub fn new(platform: Vec<Policy>) -> Engine {
        Engine {
            platform,
            servers: HashMap::new(),
            authorizer: Authorizer::new(),
        }
    }

    /// Loads (or replaces) a server's slice; `policies` come from [`crate::compile_server`].
    pub fn set_server(&mut self, facts: ServerFacts, policies: Vec<Policy>) -> Result<(), String> {
        let mut set = PolicySet::new();
        for policy in self.platform.iter().chain(policies.iter()) {
            set.add(policy.clone()).map_err(|e| format!("{e}"))?;
        }
        let tools = facts
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        self.servers.insert(
            facts.name.clone(),
            Slice {
                facts,
                policies: set,
                tools,
            },
        );
        Ok(())
    }

    pub fn has_server(&self, name: &str) -> bool {
        self.servers.contains_key(name)
    }

    /// The number of policies loaded, platform ones counted once.
    pub fn policy_count(&self) -> usize {
        self.platform.len()
            + self
                .servers
                .values()
                .map(|s| s.policies.policies().count() - self.platform.len())
                .sum::<usize>()
    }

    /// Answers one question.
    pub fn decide(&self, request: &Request<'_>) -> Verdict {
        let Some(slice) = self.servers.get(request.server) else {
            return Verdict::deny(
                format!("server {} is not registered", request.server),
                Vec::new(),
            );
        };
        let tool = match (request.action, request.tool) {
            (Action::Connect, _) => None,
            (_, Some(name)) => match slice.tools.get(name) {
                Some(&i) => Some(&slice.facts.tools[i]),
                None => {
                    return Verdict::deny(
                        format!(
                            "tool {name} is not registered for server {}",
                            request.server
                        ),
                        Vec::new(),
                    );
                }
            },
            (_, None) => {
                return Verdict::deny("a tool is required for list and call".into(), Vec::new());
            }
        };
        match self.evaluate(slice, tool, request) {
            Ok(verdict) => verdict,
            Err(e) => Verdict::deny(
                format!("the request could not be evaluated: {e}"),
                Vec::new(),
            ),
        }
    }

    /// Whether `tools/list` shows the tool: listing it and calling it without arguments are allowed.
    pub fn visible(&self, request: &Request<'_>) -> Verdict {
        let list = self.decide(&Request {
            action: Action::List,
            args: None,
            ..*request
        });
        if !list.allowed {
            return list;
        }
        self.decide(&Request {
            action: Action::Call,
            args: None,
            ..*request
        })
    }

    /// Whether the call may run: the tool must be listable and the call, with its arguments, allowed.
    pub fn callable(&self, request: &Request<'_>) -> Verdict {
        let list = self.decide(&Request {
            action: Action::List,
            args: None,
            ..*request
        });
        if !list.allowed {
            return list;
        }
        self.decide(&Request {
            action: Action::Call,
            ..*request
        })
    }

    /// The groups whose members may call the tool from `surface` (and `channel`), and whether any
    /// authenticated user may. Groups are those the server's and the platform's policies mention.
    pub fn who_can(
        &self,
        server: &str,
        tool: &str,
        surface: &str,
        channel: Option<&str>,
    ) -> (bool, Vec<String>) {
        let Some(slice) = self.servers.get(server) else {
            return (false, Vec::new());
        };
        let ask = |principal: &Principal| {
            self.visible(&Request {
                principal,
                action: Action::Call,
                server,
                tool: Some(tool),
                surface,
                channel,
                args: None,
            })
            .allowed
        };
        let anyone = ask(&Principal::User {
            id: "(anyone)".into(),
            groups: Vec::new(),
        });
        let mut groups: BTreeSet<String> = BTreeSet::new();
        for policy in slice.policies.policies() {
            let text = policy.to_string();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("Mcp::Group::\"") {
                rest = &rest[start + "Mcp::Group::\"".len()..];
                if let Some(end) = rest.find('"') {
                    groups.insert(rest[..end].to_owned());
                    rest = &rest[end..];
                }
            }
        }
        let allowed = groups
            .into_iter()
            .filter(|g| {
                ask(&Principal::User {
                    id: "(member)".into(),
                    groups: vec![g.clone()],
                })
            })
            .collect();
        (anyone, allowed)
    }

    fn evaluate(
        &self,
        slice: &Slice,
        tool: Option<&ToolFacts>,
        request: &Request<'_>,
    ) -> Result<Verdict, String> {
        let facts = &slice.facts;
        let server_uid = uid("Server", &facts.name)?;
        let mut entities = Vec::new();
        let principal_uid = match request.principal {
            Principal::User { id, .. } => uid("User", id)?,
            Principal::Service { id, .. } => uid("Service", id)?,
        };
        let mut parents = HashSet::new();
        for group in request.principal.groups() {
            let group_uid = uid("Group", group)?;
            entities.push(Entity::new_no_attrs(group_uid.clone(), HashSet::new()));
            parents.insert(group_uid);
        }
        entities.push(Entity::new_no_attrs(principal_uid.clone(), parents));
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        entities.push(
            Entity::new(
                server_uid.clone(),
                HashMap::from([
                    ("name".into(), text(&facts.name)),
                    ("environment".into(), text(&facts.environment)),
                    ("owner_team".into(), text(&facts.owner_team)),
                ]),
                HashSet::new(),
            )
            .map_err(|e| e.to_string())?,
        );
        let resource = match tool {
            None => server_uid.clone(),
            Some(tool) => {
                let tool_uid = uid("Tool", &format!("{}/{}", facts.name, tool.name))?;
                entities.push(
                    Entity::new(
                        tool_uid.clone(),
                        HashMap::from([
                            ("name".into(), text(&tool.name)),
                            ("server".into(), text(&facts.name)),
                            ("environment".into(), text(&facts.environment)),
                            (
                                "read_only".into(),
                                RestrictedExpression::new_bool(tool.read_only),
                            ),
                            ("sensitivity".into(), text(&tool.sensitivity)),
                            (
                                "policy".into(),
                                text(tool.policy.as_ref().map_or("", |p| p.name.as_str())),
                            ),
                        ]),
                        HashSet::from([server_uid.clone()]),
                    )
                    .map_err(|e| e.to_string())?,
                );
                tool_uid
            }
        };
        let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
        let mut context = Map::new();
        context.insert("surface".into(), json!(request.surface));
        if let Some(channel) = request.channel {
            context.insert("channel".into(), json!(channel));
        }
        if let (Action::Call, Some(args)) = (request.action, request.args) {
            context.insert("args".into(), cedar_args(args));
        }
        let context =
            Context::from_json_value(Value::Object(context), None).map_err(|e| e.to_string())?;
        let action = EntityUid::from_type_name_and_id(
            type_name("Action")?,
            EntityId::new(request.action.id()),
        );
        let cedar_request =
            cedar_policy::Request::new(principal_uid, action, resource, context, None)
                .map_err(|e| e.to_string())?;
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &slice.policies, &entities);
        let deciding: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        let errors: Vec<String> = response
            .diagnostics()
            .errors()
            .map(|e| e.to_string())
            .collect();
        let target = match tool {
            Some(t) => format!("tool {}", t.name),
            None => format!("server {}", facts.name),
        };
        Ok(match response.decision() {
            Decision::Allow => Verdict {
                allowed: true,
                reason: format!(
                    "{} is allowed by {}",
                    request.action.id(),
                    deciding.join(", ")
                ),
                policies: deciding,
                errors,
            },
            Decision::Deny if !deciding.is_empty() => Verdict {
                allowed: false,
                reason: format!(
                    "{} on {target} is forbidden by {}",
                    request.action.id(),
                    deciding.join(", ")
                ),
                policies: deciding,
                errors,
            },
            Decision::Deny => match tool.and_then(|t| t.policy.as_ref()) {
                Some(named) => Verdict {
                    allowed: false,
                    reason: format!(
                        "policy {} on {target} requires one of groups [{}]",
                        named.name,
                        named.groups.join(", ")
                    ),
                    policies: vec![format!("{}/{}", facts.name, named.name)],
                    errors,
                },
                None => Verdict {
                    allowed: false,
                    reason: format!("no policy permits {} on {target}", request.action.id()),
                    policies: Vec::new(),
                    errors,
                },
            },
        })
    }
}

fn type_name(name: &str) -> Result<EntityTypeName, String> {
    format!("Mcp::{name}")
        .parse()
        .map_err(|e: cedar_policy::ParseErrors| e.to_string())
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    Ok(EntityUid::from_type_name_and_id(
        type_name(kind)?,
        EntityId::new(id),
    ))
}

/// The arguments as Cedar can hold them: strings, booleans, integers and lists of strings at the
/// top level. Other values (fractions, nested objects) are left out; policies cannot test them.
fn cedar_args(args: &Value) -> Value {
    let Some(object) = args.as_object() else {
        return json!({});
    };
    let kept = object
        .iter()
        .filter(|(_, v)| match v {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(n) => n.is_i64(),
            Value::Array(items) => items.iter().all(Value::is_string),
            _ => false,
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}
