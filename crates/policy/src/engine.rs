//! Deciding: the per-server policy slices, and one Cedar authorization per question over the
//! entities of the request (the principal and its groups, the server, the tool).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{Arc, Mutex},
};

use cedar_policy::{
    Authorizer, Context, Decision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicySet, RestrictedExpression,
};
use serde_json::Value;

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
    /// The user name or SPIFFE ID.
    pub fn id(&self) -> &str {
        match self {
            Principal::User { id, .. } | Principal::Service { id, .. } => id,
        }
    }

    /// Identifies the principal and its groups, for caching.
    fn cache_key(&self) -> String {
        let kind = match self {
            Principal::User { .. } => 'u',
            Principal::Service { .. } => 's',
        };
        format!(
            "{kind}\u{0}{}\u{0}{}",
            self.id(),
            self.groups().join("\u{0}")
        )
    }

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

    /// The refusal as callers read it: `denied by policy <ids>: <reason>`, or `denied: <reason>`
    /// when no policy permits. The gateway and the server SDK word denials alike.
    pub fn denial_message(&self) -> String {
        if self.policies.is_empty() {
            format!("denied: {}", self.reason)
        } else {
            format!(
                "denied by policy {}: {}",
                self.policies.join(", "),
                self.reason
            )
        }
    }
}

/// The answer to "who can call this tool?".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhoCan {
    /// Every authenticated user may.
    pub any_user: bool,
    pub groups: Vec<String>,
    /// Services (SPIFFE IDs) named by the policies that may.
    pub services: Vec<String>,
}

/// A call needs a person's approval before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalNeed {
    /// `self`, `owners` or `group:<name>`.
    pub approver: String,
    /// The approval rules that matched, strictest first.
    pub policies: Vec<String>,
}

/// The loaded policies: platform-wide ones, and a slice per server.
pub struct Engine {
    platform: Vec<Policy>,
    servers: HashMap<String, Slice>,
    authorizer: Authorizer,
    types: Types,
}

/// Request entities by principal (its cache key) and tool index (none: the server itself).
type EntityCache = HashMap<(String, Option<usize>), Arc<Entities>>;

/// Entries kept in the entity cache before it starts over.
const ENTITY_CACHE_CAPACITY: usize = 10_000;

/// Verdicts by the request's cache key ([`verdict_key`]).
type VerdictCache = HashMap<String, Verdict>;

/// Verdicts a server's slice remembers before it starts over.
const VERDICT_CACHE_CAPACITY: usize = 10_000;

impl Default for Engine {
    fn default() -> Engine {
        Engine::new(Vec::new())
    }
}

struct Slice {
    facts: ServerFacts,
    /// Every policy of the slice (the platform's and this server's), for explanations.
    policies: PolicySet,
    /// The approval rules: permits annotated `@approval("<approver>")`.
    approvals: PolicySet,
    /// The policies that can apply to connecting to the server.
    connect: PolicySet,
    /// Per tool (by index), the policies that can apply to it: the generated permit for its named
    /// policy (or for tools without one), and every policy not generated for a particular tool.
    /// Evaluating only these is what keeps a decision fast with many policies loaded. Tools
    /// under the same named policy share their set.
    tool_sets: Vec<Arc<PolicySet>>,
    /// Per tool (by index), whether a call's arguments can change its decision: some policy in
    /// its set reads `context` beyond the surface and the channel. Where none does, a call's
    /// verdict is remembered whatever its arguments.
    reads_args: Vec<bool>,
    /// Whether the connect set reads more of `context` than the surface and the channel.
    connect_reads_args: bool,
    tools: HashMap<String, usize>,
    /// The server's entity, built once, and each tool's uid (by tool index); a tool's entity
    /// is built from its facts when a decision asks for it ([`Slice::tool_entity`]).
    server_entity: Entity,
    tool_uids: Vec<EntityUid>,
    /// Request entities per principal and tool; see [`Engine::entities_for`].
    entity_cache: Mutex<EntityCache>,
    /// Verdicts already reached; see [`Engine::decide`]. A decision is a pure function of the
    /// slice and the request, so they stand as long as the slice does.
    verdicts: Mutex<VerdictCache>,
}

/// Entity type names and action ids, parsed once: parsing is far dearer than a decision.
struct Types {
    user: EntityTypeName,
    service: EntityTypeName,
    group: EntityTypeName,
    server: EntityTypeName,
    tool: EntityTypeName,
    actions: [EntityUid; 3],
}

impl Types {
    fn new() -> Types {
        let name = |n: &str| -> EntityTypeName {
            format!("Mcp::{n}")
                .parse()
                .expect("the schema's type names parse")
        };
        let action =
            |a: Action| EntityUid::from_type_name_and_id(name("Action"), EntityId::new(a.id()));
        Types {
            user: name("User"),
            service: name("Service"),
            group: name("Group"),
            server: name("Server"),
            tool: name("Tool"),
            actions: [
                action(Action::Connect),
                action(Action::List),
                action(Action::Call),
            ],
        }
    }

    fn uid(kind: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(kind.clone(), EntityId::new(id))
    }

    fn action(&self, action: Action) -> &EntityUid {
        &self.actions[match action {
            Action::Connect => 0,
            Action::List => 1,
            Action::Call => 2,
        }]
    }
}

impl Engine {
    pub fn new(platform: Vec<Policy>) -> Engine {
        Engine {
            platform,
            servers: HashMap::new(),
            authorizer: Authorizer::new(),
            types: Types::new(),
        }
    }

    /// Loads (or replaces) a server's slice; `policies` come from [`crate::compile_server`].
    pub fn set_server(
        &mut self,
        mut facts: ServerFacts,
        policies: Vec<Policy>,
    ) -> Result<(), String> {
        // Approval rules (`@approval`) never grant anything: they are asked separately.
        let (approval_rules, policies): (Vec<Policy>, Vec<Policy>) = policies
            .into_iter()
            .partition(|p| p.annotation("approval").is_some());
        let approvals = policy_set(approval_rules.iter())?;
        let all: Vec<&Policy> = self.platform.iter().chain(policies.iter()).collect();
        let set = policy_set(all.iter().copied())?;
        // Generated policies carry their purpose in their id: `<server>/connect`,
        // `<server>/open-tools` and `<server>/<named policy>` apply to some resources only.
        let prefix = format!("{}/", facts.name);
        let named: HashSet<String> = facts
            .tools
            .iter()
            .filter_map(|t| t.policy.as_ref())
            .map(|p| format!("{prefix}{}", p.name))
            .collect();
        let connect_id = format!("{prefix}connect");
        let open_id = format!("{prefix}open-tools");
        let specific = |id: &str| id == connect_id || id == open_id || named.contains(id);
        let connect = policy_set(all.iter().copied().filter(|p| {
            let id = p.id().to_string();
            !specific(&id) || id == connect_id
        }))?;
        // Tools under the same named policy (or none) share one set: a server has a handful of
        // named policies and may have a thousand tools.
        // Per set: the set, and its policies that read arguments.
        let mut sets_by_policy: HashMap<String, (Arc<PolicySet>, Vec<ArgsUse>)> = HashMap::new();
        let mut tool_sets = Vec::with_capacity(facts.tools.len());
        let mut reads_args = Vec::with_capacity(facts.tools.len());
        for tool in &facts.tools {
            let own = match &tool.policy {
                Some(p) => format!("{prefix}{}", p.name),
                None => open_id.clone(),
            };
            let (set, readers) = match sets_by_policy.entry(own) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(slot) => {
                    let own = slot.key();
                    let members: Vec<&Policy> = all
                        .iter()
                        .copied()
                        .filter(|p| {
                            let id = p.id().to_string();
                            !specific(&id) || id == *own
                        })
                        .collect();
                    let readers = members
                        .iter()
                        .map(|p| ArgsUse::of(p))
                        .filter(|u| u.reads)
                        .collect();
                    slot.insert((Arc::new(policy_set(members.into_iter())?), readers))
                }
            };
            reads_args.push(
                !readers.is_empty() && {
                    let tool_id = format!("{}/{}", facts.name, tool.name);
                    readers.iter().any(|u| u.may_read_for(&tool_id))
                },
            );
            tool_sets.push(set.clone());
        }
        let connect_reads_args = connect.policies().any(|p| ArgsUse::of(p).reads);
        let tools = facts
            .tools
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        let server_uid = Types::uid(&self.types.server, &facts.name);
        let server_entity = Entity::new(
            server_uid.clone(),
            HashMap::from([
                ("name".into(), text(&facts.name)),
                ("environment".into(), text(&facts.environment)),
                ("owner_team".into(), text(&facts.owner_team)),
                (
                    "approved".into(),
                    RestrictedExpression::new_bool(facts.approval.approved),
                ),
            ]),
            HashSet::new(),
        )
        .map_err(|e| e.to_string())?;
        // Tool entities are built when a decision needs one, not kept: a 10,000-tool catalog
        // kept ~2 KB of Cedar attributes per tool, and each verdict is remembered anyway.
        let tool_uids = facts
            .tools
            .iter()
            .map(|tool| Types::uid(&self.types.tool, &format!("{}/{}", facts.name, tool.name)))
            .collect();
        // The input schemas typed the policies when they were compiled; no decision reads them,
        // and a catalog of 10,000 tools would keep as many JSON trees here.
        for tool in &mut facts.tools {
            tool.input_schema = None;
        }
        self.servers.insert(
            facts.name.clone(),
            Slice {
                facts,
                policies: set,
                approvals,
                connect,
                tool_sets,
                reads_args,
                connect_reads_args,
                tools,
                server_entity,
                tool_uids,
                entity_cache: Mutex::new(HashMap::new()),
                verdicts: Mutex::new(HashMap::new()),
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

    /// Answers one question. A verdict is remembered for the slice's lifetime, keyed by
    /// everything the request's Cedar evaluation reads: the principal and its groups, the
    /// action, the tool, the surface and the channel, and the arguments too unless no policy
    /// that can apply reads them (then a call's arguments are not in the key, and a call is
    /// decided once per caller and tool, whatever its arguments).
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
                Some(&i) => Some((i, &slice.facts.tools[i])),
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
        let index = tool.map(|(i, _)| i);
        let reads_args = match index {
            Some(i) => slice.reads_args[i],
            None => slice.connect_reads_args,
        };
        let key = (request.action != Action::Call || request.args.is_none() || !reads_args)
            .then(|| verdict_key(request, index));
        if let Some(key) = &key
            && let Some(hit) = lock(&slice.verdicts).get(key)
        {
            return hit.clone();
        }
        let verdict = match self.evaluate(slice, tool, request) {
            Ok(verdict) => verdict,
            Err(e) => Verdict::deny(
                format!("the request could not be evaluated: {e}"),
                Vec::new(),
            ),
        };
        if let Some(key) = key {
            let mut verdicts = lock(&slice.verdicts);
            if verdicts.len() >= VERDICT_CACHE_CAPACITY {
                verdicts.clear();
            }
            verdicts.insert(key, verdict.clone());
        }
        verdict
    }

    /// Whether `tools/list` shows the tool: listing it and calling it without arguments are allowed.
    pub fn visible(&self, request: &Request<'_>) -> Verdict {
        self.callable(&Request {
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

    /// Who may call the tool from `surface` (and `channel`): whether any authenticated user may,
    /// the groups whose members may, and the services (SPIFFE IDs) that may. Groups and services
    /// are those the server's and the platform's policies name.
    pub fn who_can(
        &self,
        server: &str,
        tool: &str,
        surface: &str,
        channel: Option<&str>,
    ) -> WhoCan {
        let Some(slice) = self.servers.get(server) else {
            return WhoCan::default();
        };
        let ask = |principal: &Principal| {
            let request = Request {
                principal,
                action: Action::Call,
                server,
                tool: Some(tool),
                surface,
                channel,
                args: None,
            };
            self.visible(&request).allowed
        };
        let named = |kind: &str| -> BTreeSet<String> {
            let marker = format!("Mcp::{kind}::\"");
            let mut found = BTreeSet::new();
            for policy in slice.policies.policies() {
                let text = policy.to_string();
                let mut rest = text.as_str();
                while let Some(start) = rest.find(&marker) {
                    rest = &rest[start + marker.len()..];
                    if let Some(end) = rest.find('"') {
                        found.insert(rest[..end].to_owned());
                        rest = &rest[end..];
                    }
                }
            }
            found
        };
        WhoCan {
            any_user: ask(&Principal::User {
                id: "(anyone)".into(),
                groups: Vec::new(),
            }),
            groups: named("Group")
                .into_iter()
                .filter(|g| {
                    ask(&Principal::User {
                        id: "(member)".into(),
                        groups: vec![g.clone()],
                    })
                })
                .collect(),
            services: named("Service")
                .into_iter()
                .filter(|id| {
                    ask(&Principal::Service {
                        id: id.clone(),
                        groups: Vec::new(),
                    })
                })
                .collect(),
        }
    }

    /// The entities of a request by `principal` about the slice's server or one of its tools
    /// (by index): the principal with its groups, the server, and that tool. Building them
    /// costs more than deciding, so they are cached per principal and tool in the server's
    /// slice until the slice is replaced, where they can be asked for again. Only the tool asked
    /// about is in them, so an entry's size does not grow with the server's tools.
    fn entities_for(
        &self,
        slice: &Slice,
        principal: &Principal,
        principal_uid: &EntityUid,
        tool: Option<usize>,
    ) -> Result<Arc<Entities>, String> {
        // Kept only where the same question comes back: a call whose verdict depends on its
        // arguments, or the approval rules, asked on every call. Every other verdict is
        // remembered, so entities kept for it would not be read again (one caller's listing of a
        // 10,000-tool catalog kept 10,000 of them, about 2 KB each).
        let asked_again = match tool {
            Some(i) => slice.reads_args[i] || !slice.approvals.is_empty(),
            None => false,
        };
        let key = asked_again.then(|| (principal.cache_key(), tool));
        if let Some(key) = &key
            && let Some(hit) = lock(&slice.entity_cache).get(key)
        {
            return Ok(hit.clone());
        }
        let parents = principal
            .groups()
            .iter()
            .map(|g| Types::uid(&self.types.group, g))
            .collect();
        let mut entities = Vec::with_capacity(3);
        entities.push(Entity::new_no_attrs(principal_uid.clone(), parents));
        entities.push(slice.server_entity.clone());
        if let Some(index) = tool {
            entities.push(slice.tool_entity(index)?);
        }
        let entities =
            Arc::new(Entities::from_entities(entities, None).map_err(|e| e.to_string())?);
        let Some(key) = key else {
            return Ok(entities);
        };
        let mut cache = lock(&slice.entity_cache);
        if cache.len() >= ENTITY_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, entities.clone());
        Ok(entities)
    }

    /// The Cedar request (and the principal's entities) for `request` on `tool` (by index) or the
    /// server.
    fn cedar_request(
        &self,
        slice: &Slice,
        tool: Option<usize>,
        request: &Request<'_>,
    ) -> Result<cedar_policy::Request, String> {
        let types = &self.types;
        let principal_uid = match request.principal {
            Principal::User { id, .. } => Types::uid(&types.user, id),
            Principal::Service { id, .. } => Types::uid(&types.service, id),
        };
        let resource = match tool {
            None => slice.server_entity.uid(),
            Some(index) => slice.tool_uids[index].clone(),
        };
        let mut context = vec![(
            "surface".to_owned(),
            RestrictedExpression::new_string(request.surface.to_owned()),
        )];
        if let Some(channel) = request.channel {
            context.push((
                "channel".to_owned(),
                RestrictedExpression::new_string(channel.to_owned()),
            ));
        }
        if let (Action::Call, Some(args)) = (request.action, request.args) {
            context.push(("args".to_owned(), cedar_args(args)?));
        }
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        cedar_policy::Request::new(
            principal_uid,
            types.action(request.action).clone(),
            resource,
            context,
            None,
        )
        .map_err(|e| e.to_string())
    }

    /// Whether this call (with its arguments) needs a person's approval before it runs, and
    /// whose: the approval rules (policies annotated `@approval("...")`) that match it. Several
    /// matching rules ask the strictest approver (a named group, then the owner team, then the
    /// requester). Asks nothing about whether the call is allowed: ask [`Engine::callable`] first.
    pub fn approval(&self, request: &Request<'_>) -> Option<ApprovalNeed> {
        let slice = self.servers.get(request.server)?;
        let index = *slice.tools.get(request.tool?)?;
        if slice.approvals.is_empty() {
            return None;
        }
        let call = Request {
            action: Action::Call,
            ..*request
        };
        let prepared = self.cedar_request(slice, Some(index), &call).and_then(|r| {
            let uid = r.principal().ok_or("no principal")?.clone();
            Ok((
                r,
                self.entities_for(slice, request.principal, &uid, Some(index))?,
            ))
        });
        let (cedar_request, entities) = match prepared {
            Ok(p) => p,
            Err(e) => {
                // Fail closed: an approval rule that cannot be evaluated asks the owner team.
                return Some(ApprovalNeed {
                    approver: "owners".into(),
                    policies: vec![format!("(unevaluable: {e})")],
                });
            }
        };
        let response = self
            .authorizer
            .is_authorized(&cedar_request, &slice.approvals, &entities);
        if response.decision() != Decision::Allow {
            return None;
        }
        let mut needs: Vec<(u8, String, String)> = response
            .diagnostics()
            .reason()
            .filter_map(|id| {
                let approver = slice
                    .approvals
                    .policy(id)?
                    .annotation("approval")?
                    .to_owned();
                let rank = if approver.starts_with("group:") {
                    0
                } else if approver == "owners" {
                    1
                } else {
                    2
                };
                Some((rank, approver, id.to_string()))
            })
            .collect();
        needs.sort();
        let (_, approver, _) = needs.first()?.clone();
        Some(ApprovalNeed {
            approver,
            policies: needs.into_iter().map(|(_, _, id)| id).collect(),
        })
    }

    fn evaluate(
        &self,
        slice: &Slice,
        tool: Option<(usize, &ToolFacts)>,
        request: &Request<'_>,
    ) -> Result<Verdict, String> {
        let facts = &slice.facts;
        let cedar_request = self.cedar_request(slice, tool.map(|(i, _)| i), request)?;
        let entities = self.entities_for(
            slice,
            request.principal,
            cedar_request.principal().ok_or("no principal")?,
            tool.map(|(i, _)| i),
        )?;
        let slice_set = match tool {
            Some((index, _)) => slice.tool_sets[index].as_ref(),
            None => &slice.connect,
        };
        let tool = tool.map(|(_, t)| t);
        let response = self
            .authorizer
            .is_authorized(&cedar_request, slice_set, &entities);
        // Sorted: Cedar gives them in no particular order, and a verdict reads the same however
        // often it is reached.
        let mut deciding: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        deciding.sort();
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
            Decision::Deny if deciding == [format!("{}/server-access", facts.name)] => Verdict {
                allowed: false,
                reason: format!(
                    "server {} is restricted to groups [{}] and {} is in none of them",
                    facts.name,
                    facts.allowed_groups.join(", "),
                    request.principal.id()
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

/// The cache key of a decision about `request` on the tool of index `tool` (none: the server):
/// every fact of the request the Cedar evaluation reads except the arguments, each field
/// prefixed by its length so that no two requests share a key.
fn verdict_key(request: &Request<'_>, tool: Option<usize>) -> String {
    use std::fmt::Write;
    fn field(key: &mut String, value: &str) {
        let _ = write!(key, "{}:{value}", value.len());
    }
    let mut key = String::with_capacity(64);
    let (kind, id, groups) = match request.principal {
        Principal::User { id, groups } => ("u", id, groups),
        Principal::Service { id, groups } => ("s", id, groups),
    };
    field(&mut key, kind);
    field(&mut key, id);
    let _ = write!(key, "{};", groups.len());
    for group in groups {
        field(&mut key, group);
    }
    field(&mut key, request.action.id());
    match tool {
        Some(index) => {
            let _ = write!(key, "{index};");
        }
        None => key.push('-'),
    }
    field(&mut key, request.surface);
    match request.channel {
        Some(channel) => field(&mut key, channel),
        None => key.push('-'),
    }
    key
}

/// Whether a policy can read a call's arguments, and the one tool it applies to if its scope
/// names one.
struct ArgsUse {
    reads: bool,
    /// `resource == Mcp::Tool::"<server>/<tool>"`: the policy applies to no other tool.
    only_tool: Option<String>,
}

impl ArgsUse {
    fn of(policy: &Policy) -> ArgsUse {
        let json = policy.to_json().ok();
        let only_tool = json.as_ref().and_then(|json| {
            let scope = json.get("resource")?;
            let entity = scope.get("entity")?;
            (scope.get("op")?.as_str()? == "==" && entity.get("type")?.as_str()? == "Mcp::Tool")
                .then(|| entity.get("id")?.as_str().map(str::to_owned))
                .flatten()
        });
        ArgsUse {
            reads: json.as_ref().is_none_or(reads_args),
            only_tool,
        }
    }

    /// Whether the policy may read the arguments of calls of the tool `<server>/<tool>`.
    fn may_read_for(&self, tool: &str) -> bool {
        self.reads && self.only_tool.as_deref().is_none_or(|only| only == tool)
    }
}

/// Whether a policy (in its JSON form, where every use of a variable is explicit) can read a
/// call's arguments: it uses `context` other than by reading (or testing for) its `surface` or
/// `channel`.
fn reads_args(policy: &Value) -> bool {
    fn uses_context(expr: &Value) -> bool {
        match expr {
            Value::Object(fields) => {
                if fields.get("Var").and_then(Value::as_str) == Some("context") {
                    return true;
                }
                for (op, operand) in fields {
                    if (op == "." || op == "has")
                        && operand.pointer("/left/Var").and_then(Value::as_str) == Some("context")
                        && matches!(
                            operand.get("attr").and_then(Value::as_str),
                            Some("surface" | "channel")
                        )
                    {
                        continue;
                    }
                    if uses_context(operand) {
                        return true;
                    }
                }
                false
            }
            Value::Array(items) => items.iter().any(uses_context),
            _ => false,
        }
    }
    uses_context(policy)
}

impl Slice {
    /// The Cedar entity of the tool at `index`: its attributes, with the server as its parent.
    fn tool_entity(&self, index: usize) -> Result<Entity, String> {
        let facts = &self.facts;
        let tool = facts
            .tools
            .get(index)
            .ok_or_else(|| format!("no tool at index {index}"))?;
        let text = |s: &str| RestrictedExpression::new_string(s.to_owned());
        Entity::new(
            self.tool_uids[index].clone(),
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
                (
                    "approved".into(),
                    RestrictedExpression::new_bool(facts.approval.approved && tool.approved),
                ),
            ]),
            HashSet::from([self.server_entity.uid()]),
        )
        .map_err(|e| e.to_string())
    }
}

/// A lock that a panic elsewhere did not leave unusable (what it guards are caches, whole at
/// every unlock).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn policy_set<'a>(policies: impl Iterator<Item = &'a Policy>) -> Result<PolicySet, String> {
    let mut set = PolicySet::new();
    for policy in policies {
        set.add(policy.clone()).map_err(|e| format!("{e}"))?;
    }
    Ok(set)
}

/// The arguments as Cedar can hold them: strings, booleans, integers and lists of strings at the
/// top level. Other values (fractions, nested objects) are left out; policies cannot test them.
fn cedar_args(args: &Value) -> Result<RestrictedExpression, String> {
    let Some(object) = args.as_object() else {
        return RestrictedExpression::new_record(Vec::new()).map_err(|e| e.to_string());
    };
    let fields = object.iter().filter_map(|(k, v)| {
        let value = match v {
            Value::String(s) => RestrictedExpression::new_string(s.clone()),
            Value::Bool(b) => RestrictedExpression::new_bool(*b),
            Value::Number(n) => RestrictedExpression::new_long(n.as_i64()?),
            Value::Array(items) if items.iter().all(Value::is_string) => {
                RestrictedExpression::new_set(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| RestrictedExpression::new_string(s.to_owned())),
                )
            }
            _ => return None,
        };
        Some((k.clone(), value))
    });
    RestrictedExpression::new_record(fields).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(text: &str) -> ArgsUse {
        ArgsUse::of(&text.parse::<Policy>().unwrap())
    }

    #[test]
    fn a_policy_reads_the_arguments_only_where_it_uses_more_of_the_context_than_surface_and_channel()
     {
        for (text, reads) in [
            ("permit(principal, action, resource);", false),
            (
                r#"forbid(principal, action, resource) when { context.surface == "bot" && !(context has channel && context.channel == "help") };"#,
                false,
            ),
            (
                r#"forbid(principal, action, resource) when { context["surface"] == "ide" };"#,
                false,
            ),
            (
                r#"forbid(principal, action, resource) when { context has args };"#,
                true,
            ),
            (
                r#"forbid(principal, action, resource) when { context.args.table == "x" };"#,
                true,
            ),
            (
                r#"forbid(principal, action, resource) when { context["args"]["table"] == "x" };"#,
                true,
            ),
            (
                r#"forbid(principal, action, resource) when { context == {"surface": "ide"} };"#,
                true,
            ),
            (
                r#"forbid(principal, action, resource) when { context.surface == "ide" || context.args.n > 3 };"#,
                true,
            ),
        ] {
            assert_eq!(uses(text).reads, reads, "{text}");
        }
    }

    #[test]
    fn a_slice_keeps_request_entities_only_where_they_are_asked_for_again() {
        use crate::{Approval, ToolFacts, compile_server};
        let tool = |name: &str| ToolFacts {
            name: name.into(),
            read_only: false,
            sensitivity: "low".into(),
            policy: None,
            input_schema: Some(serde_json::json!({"type": "object",
                "properties": {"table": {"type": "string"}}})),
            approved: true,
            approval: None,
        };
        let facts = ServerFacts {
            name: "presto".into(),
            environment: "prod".into(),
            owner_team: "data".into(),
            allowed_groups: Vec::new(),
            tools: vec![tool("tables"), tool("query")],
            policies: r#"forbid(principal, action == Mcp::Action::"call", resource == Mcp::Tool::"presto/query")
                when { context has args && context.args has table && context.args.table like "finance.*" };"#
                .into(),
            approval: Approval::approved(),
        };
        let policies = compile_server(&facts).unwrap();
        let mut engine = Engine::default();
        engine.set_server(facts, policies).unwrap();
        let principal = Principal::User {
            id: "ann".into(),
            groups: Vec::new(),
        };
        let args = serde_json::json!({"table": "ads.clicks"});
        let ask = |tool: &str, args: Option<&serde_json::Value>| {
            let request = Request {
                principal: &principal,
                action: Action::Call,
                server: "presto",
                tool: Some(tool),
                surface: "api",
                channel: None,
                args,
            };
            engine.callable(&request).allowed
        };
        for _ in 0..3 {
            assert!(ask("tables", None) && ask("tables", Some(&args)));
            assert!(ask("query", Some(&args)));
        }
        let finance = serde_json::json!({"table": "finance.revenue"});
        assert!(
            !ask("query", Some(&finance)),
            "a remembered verdict crossed arguments"
        );
        let slice = &engine.servers["presto"];
        let kept: Vec<_> = lock(&slice.entity_cache).keys().map(|(_, t)| *t).collect();
        assert_eq!(
            kept,
            vec![Some(1)],
            "only the tool whose calls read arguments"
        );
        assert!(slice.facts.tools.iter().all(|t| t.input_schema.is_none()));
    }

    #[test]
    fn a_policy_scoped_to_one_tool_reads_no_other_tools_arguments() {
        let scoped = uses(
            r#"forbid(principal, action, resource == Mcp::Tool::"presto/query") when { context.args.table == "x" };"#,
        );
        assert!(scoped.may_read_for("presto/query"));
        assert!(!scoped.may_read_for("presto/tables"));
        let everywhere =
            uses(r#"forbid(principal, action, resource) when { context.args.n > 3 };"#);
        assert!(everywhere.may_read_for("presto/tables"));
        let in_server = uses(
            r#"forbid(principal, action, resource in Mcp::Server::"presto") when { context.args.n > 3 };"#,
        );
        assert!(in_server.may_read_for("presto/tables"));
    }
}
