//! Governance of every tool call: the manifest's named policies are enforced before a tool runs,
//! and each invocation is timed, logged and counted. [`Governance::govern`] wraps each route of an
//! rmcp `ToolRouter`, so tool code stays ordinary rmcp code.

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
            }),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
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
                    Box::pin(async move {
                        let tool = ctx.name.to_string();
                        let caller = governance.caller(&ctx.request_context);
                        let started = Instant::now();
                        if let Decision::Deny { reason, policy } = governance.decide(&caller, &tool)
                        {
                            governance.inner.telemetry.record(&Invocation {
                                tool: &tool,
                                caller: &caller,
                                duration: started.elapsed(),
                                outcome: "denied",
                                is_error: true,
                                error: Some(&reason),
                            });
                            return Err(governance
                                .denied(policy.as_deref().unwrap_or("server-access"), &reason));
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
                    })
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
