//! Switchboard's policy engine, on Cedar. Every access decision (may this principal connect to a
//! server, see a tool in `tools/list`, call it with these arguments, from this surface and channel)
//! is one Cedar authorization over a small set of entities built per request.
//!
//! Policies come from three places and are evaluated together, per server:
//! - compiled from each server's manifest: business-group gating (`forbid ... unless` the caller
//!   is in an allowed group) and named tool policies (`permit` for the named groups), so the
//!   names the server SDK enforces are the same rules the gateway enforces;
//! - the server's own Cedar policies (argument-aware conditions, bot channels), stored with it in
//!   the registry and validated against the schema when it registers;
//! - platform policies that apply to every server (surfaces, environments, service identities).
//!
//! **Invariant:** a decision about server S evaluates only the platform policies and S's own
//! (the per-server slice), so one server's policies can neither grant nor deny anything on another.
//! **Invariant:** a tool is listed exactly when calling it without arguments is allowed; argument
//! conditions may only restrict (`forbid`), which validation enforces.

mod compile;
mod engine;
#[doc(hidden)]
pub mod fuzzing;
mod schema;

pub use cedar_policy::Policy;
pub use compile::{
    Approval, NamedPolicy, Problem, ServerFacts, ToolFacts, compile_server, validate_platform,
};
pub use engine::{Action, ApprovalNeed, Engine, Principal, Request, Verdict, WhoCan};
pub use schema::SCHEMA;

/// Built-in platform policy: services (no person in the loop) may only call read-only tools.
pub const SERVICES_READ_ONLY: &str = r#"@id("services-read-only")
forbid(principal is Mcp::Service, action == Mcp::Action::"call", resource)
unless { resource.read_only };"#;
