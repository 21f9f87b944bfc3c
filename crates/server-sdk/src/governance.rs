//! Governance of every tool call: the manifest's named policies, and the server's own Cedar
//! policies with the call's arguments, are enforced before a tool runs, and each invocation is
//! timed, logged and counted. [`Governance::govern`] wraps each route of an rmcp `ToolRouter`, so
//! tool code stays ordinary rmcp code. A tool that works out more about a call than its arguments
//! say (the tables a SQL statement reads) asks the same policies again with
//! [`Governance::authorize_call`].

use std::{sync::Arc, time::Instant};

use catalog::{Decision, Manifest, Problem, ServerAccess, ToolAccess, decide_tool};
use rmcp::{
    ErrorData, RoleServer,
    handler::server::{router::tool::ToolRoute, tool::ToolCallContext},
    model::{CallToolResponse, ErrorCode},
    service::RequestContext,
};

use crate::{Caller, Idempotency, Telemetry, caller_of, telemetry::Invocation};

/// JSON-RPC error code of a call refused by policy (implementation-defined server error range).
pub const DENIED_CODE: ErrorCode = ErrorCode(-32003);

/// The manifest, telemetry and fallback identity shared by every tool of one server.
#[derive(Clone)]
pub struct Governance {
    inner: Arc<Inner>,
}

struct Inner {
    manifest: Manifest,
    telemetry: Telemetry,
    /// The identity used when the transport established none (stdio).
    fallback: Caller,
    idempotency: Idempotency,
    /// The server's own Cedar policies, when it has any.
    rules: Option<Rules>,
}

/// The server's own Cedar policies, compiled as the registry and the gateway compile them (the
/// manifest's gating and named policies included), over the server's slice alone.
struct Rules {
    engine: policy::Engine,
    server: String,
}

impl Governance {
    /// Governance for the server described by `manifest`, which must be valid.
    pub fn new(manifest: Manifest, fallback: Caller) -> Result<Governance, Vec<Problem>> {
        let problems = manifest.validate();
        if !problems.is_empty() {
            return Err(problems);
        }
        let telemetry = Telemetry::new(&manifest.server.name);
        Ok(Governance {
            inner: Arc::new(Inner {
                manifest,
                telemetry,
                fallback,
                idempotency: Idempotency::default(),
                rules: None,
            }),
        })
    }

    /// Adds the server's own Cedar policies (the text it registers with the registry), compiled
    /// against the schema of `tools` as the registry does it and enforced on every call with its
    /// arguments. `environment` is the one the server registers in. Call it before the governance
    /// is cloned (before [`Governance::govern`]).
    pub fn with_policies(
        mut self,
        cedar: &str,
        tools: &[rmcp::model::Tool],
        environment: &str,
    ) -> Result<Governance, Vec<Problem>> {
        if cedar.trim().is_empty() {
            return Ok(self);
        }
        let manifest = &self.inner.manifest;
        let facts = policy::ServerFacts {
            name: manifest.server.name.clone(),
            environment: environment.to_owned(),
            owner_team: manifest.server.owner_team.clone(),
            allowed_groups: manifest.access.allowed_groups.clone(),
            tools: tools
                .iter()
                .map(|tool| {
                    let name = tool.name.to_string();
                    let meta = manifest.tools.get(&name);
                    policy::ToolFacts {
                        read_only: tool
                            .annotations
                            .as_ref()
                            .and_then(|a| a.read_only_hint)
                            .unwrap_or(false),
                        sensitivity: meta.map_or("low", |t| t.sensitivity.as_str()).to_owned(),
                        policy: manifest.tool_policy(&name).map(|(policy, section)| {
                            policy::NamedPolicy {
                                name: policy.to_owned(),
                                groups: section.groups.clone(),
                            }
                        }),
                        input_schema: Some(serde_json::Value::Object((*tool.input_schema).clone())),
                        // Production approval and call approvals are the gateway's to enforce.
                        approved: true,
                        approval: None,
                        name,
                    }
                })
                .collect(),
            policies: cedar.to_owned(),
            approval: policy::Approval::approved(),
        };
        let as_problems = |problems: Vec<policy::Problem>| {
            problems
                .into_iter()
                .map(|p| Problem {
                    path: format!("policies.{}", p.policy),
                    message: p.message,
                })
                .collect::<Vec<_>>()
        };
        let compiled = policy::compile_server(&facts).map_err(as_problems)?;
        let mut engine = policy::Engine::new(Vec::new());
        engine.set_server(facts, compiled).map_err(|message| {
            vec![Problem {
                path: "policies".into(),
                message,
            }]
        })?;
        let server = manifest.server.name.clone();
        let Some(inner) = Arc::get_mut(&mut self.inner) else {
            return Err(vec![Problem {
                path: "policies".into(),
                message: "set the policies before the governance is shared".into(),
            }]);
        };
        inner.rules = Some(Rules { engine, server });
        Ok(self)
    }

    /// Asks the server's own Cedar policies whether `caller` may call `tool` with `args`, as the
    /// gateway asks them: `Ok` when they allow it (or the server has none), else an error naming
    /// the deciding policies. A tool calls it with what it worked out about the call (for example
    /// the tables a statement reads) before acting on it.
    pub fn authorize_call(
        &self,
        caller: &Caller,
        tool: &str,
        args: &serde_json::Value,
    ) -> Result<(), ErrorData> {
        let Some(rules) = &self.inner.rules else {
            return Ok(());
        };
        let (id, groups) = (caller.user.clone(), caller.groups.clone());
        let principal = if caller.user.starts_with("spiffe://") {
            policy::Principal::Service { id, groups }
        } else {
            policy::Principal::User { id, groups }
        };
        let verdict = rules.engine.callable(&policy::Request {
            principal: &principal,
            action: policy::Action::Call,
            server: &rules.server,
            tool: Some(tool),
            surface: caller.surface.as_deref().unwrap_or("local"),
            channel: caller.channel.as_deref(),
            args: Some(args),
        });
        for error in &verdict.errors {
            tracing::warn!(%error, "a policy failed to evaluate and was ignored");
        }
        if verdict.allowed {
            return Ok(());
        }
        let policy = verdict
            .policies
            .first()
            .cloned()
            .unwrap_or_else(|| "default-deny".into());
        Err(ErrorData::new(
            DENIED_CODE,
            verdict.denial_message(),
            Some(serde_json::json!({ "policy": policy, "reason": verdict.reason })),
        ))
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// Whether the server has Cedar policies of its own ([`Governance::with_policies`]).
    pub fn has_policies(&self) -> bool {
        self.inner.rules.is_some()
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.inner.telemetry
    }

    /// The outcomes of keyed calls: governed tools use it on their own; a hand-written
    /// `call_tool` wraps its work in [`Idempotency::once`].
    pub fn idempotency(&self) -> &Idempotency {
        &self.inner.idempotency
    }

    /// The caller behind `ctx`.
    pub fn caller(&self, ctx: &RequestContext<RoleServer>) -> Caller {
        caller_of(ctx).unwrap_or_else(|| self.inner.fallback.clone())
    }

    /// The guard for checks inside a tool: `Ok` when `caller` satisfies the named policy, else an
    /// error naming the policy.
    pub fn authorize(&self, caller: &Caller, policy: &str) -> Result<(), ErrorData> {
        let Some(section) = self.inner.manifest.policies.get(policy) else {
            return Err(ErrorData::internal_error(
                format!("policy {policy} is not defined in the manifest"),
                None,
            ));
        };
        if caller.principal().in_any(&section.groups) {
            Ok(())
        } else {
            Err(self.denied(
                policy,
                &format!(
                    "policy {policy} requires one of groups [{}]",
                    section.groups.join(", ")
                ),
            ))
        }
    }

    /// Wraps every route of `router` with policy enforcement and telemetry. Fails when the router
    /// and the manifest disagree on which tools exist.
    pub fn govern<S>(
        &self,
        router: rmcp::handler::server::router::tool::ToolRouter<S>,
    ) -> Result<rmcp::handler::server::router::tool::ToolRouter<S>, Vec<Problem>>
    where
        S: Send + Sync + 'static,
    {
        let mut problems = Vec::new();
        let served: Vec<String> = router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect();
        for name in &served {
            if !self.inner.manifest.tools.contains_key(name) {
                problems.push(Problem {
                    path: format!("tools.{name}"),
                    message: "the server serves this tool but the manifest does not describe it (minutes_saved, sensitivity)".into(),
                });
            }
        }
        for name in self.inner.manifest.tools.keys() {
            if !served.contains(name) {
                problems.push(Problem {
                    path: format!("tools.{name}"),
                    message: "the manifest describes this tool but the server does not serve it"
                        .into(),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }

        let mut governed = rmcp::handler::server::router::tool::ToolRouter::new();
        for route in router {
            let inner = route.call.clone();
            let governance = self.clone();
            governed.add_route(ToolRoute::new_dyn(
                route.attr.clone(),
                move |ctx: ToolCallContext<'_, S>| {
                    let inner = inner.clone();
                    let governance = governance.clone();
                    // Traced when an OTLP endpoint is configured, continuing the trace the
                    // request's `_meta` carries (the gateway's span).
                    let span = if service_kit::trace::configured() {
                        let span = tracing::info_span!(
                            "mcp.tool",
                            otel.name = %format!("tools/call {}", ctx.name),
                            otel.kind = "server",
                            mcp.server = %governance.inner.manifest.server.name,
                            mcp.tool = %ctx.name,
                        );
                        let meta = &ctx.request_context.meta;
                        service_kit::trace::continue_from(&span, |key| {
                            meta.get(key).and_then(|v| v.as_str()).map(str::to_owned)
                        });
                        span
                    } else {
                        tracing::Span::none()
                    };
                    Box::pin(tracing::Instrument::instrument(
                        async move {
                            let tool = ctx.name.to_string();
                            let caller = governance.caller(&ctx.request_context);
                            let started = Instant::now();
                            let args = ctx
                                .arguments
                                .as_ref()
                                .map(|a| serde_json::Value::Object(a.clone()))
                                .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
                            if let Err(denied) = governance.admit(&caller, &tool, &args) {
                                governance.inner.telemetry.record(&Invocation {
                                    tool: &tool,
                                    caller: &caller,
                                    duration: started.elapsed(),
                                    outcome: "denied",
                                    is_error: true,
                                    error: Some(&denied.message),
                                });
                                return Err(denied);
                            }
                            let key = Idempotency::key(&ctx.request_context);
                            let result = governance.inner.idempotency.once(key, inner(ctx)).await;
                            let (outcome, is_error, error) = match &result {
                                Ok(CallToolResponse::Complete(r)) if r.is_error == Some(true) => {
                                    ("tool_error", true, None)
                                }
                                Ok(CallToolResponse::Complete(_)) => ("ok", false, None),
                                Ok(CallToolResponse::InputRequired(_)) => {
                                    ("input_required", false, None)
                                }
                                Ok(_) => ("ok", false, None),
                                Err(e) => ("error", true, Some(e.message.to_string())),
                            };
                            governance.inner.telemetry.record(&Invocation {
                                tool: &tool,
                                caller: &caller,
                                duration: started.elapsed(),
                                outcome,
                                is_error,
                                error: error.as_deref(),
                            });
                            result
                        },
                        span,
                    ))
                },
            ));
        }
        Ok(governed)
    }

    /// A refusal naming the policy as the gateway names it (`<server>/<policy>`): one name, one
    /// rule, enforced in both places.
    fn denied(&self, policy: &str, reason: &str) -> ErrorData {
        let id = format!("{}/{policy}", self.inner.manifest.server.name);
        ErrorData::new(
            DENIED_CODE,
            format!("denied by policy {id}: {reason}"),
            Some(serde_json::json!({ "policy": id, "reason": reason })),
        )
    }

    /// Whether the call may run: the manifest's named policies, then the server's own Cedar
    /// policies with the call's arguments.
    fn admit(
        &self,
        caller: &Caller,
        tool: &str,
        args: &serde_json::Value,
    ) -> Result<(), ErrorData> {
        if let Decision::Deny { reason, policy } = self.decide(caller, tool) {
            return Err(self.denied(policy.as_deref().unwrap_or("server-access"), &reason));
        }
        self.authorize_call(caller, tool, args)
    }

    fn decide(&self, caller: &Caller, tool: &str) -> Decision {
        let manifest = &self.inner.manifest;
        let policy = manifest
            .tool_policy(tool)
            .map(|(name, p)| (name, p.groups.as_slice()));
        decide_tool(
            &caller.principal(),
            ServerAccess {
                name: &manifest.server.name,
                allowed_groups: &manifest.access.allowed_groups,
            },
            ToolAccess { name: tool, policy },
        )
    }
}
