//! The pure domain model of Switchboard: what a server declares about itself (its manifest), who a
//! caller is, and the access rules that decide whether a caller may use a server or call a tool.
//!
//! This crate knows nothing about HTTP, SQL, clocks or MCP wire types; every other crate builds on it.

mod access;
mod digest;
#[doc(hidden)]
pub mod fuzzing;
mod manifest;
mod redact;
mod scan;

pub use access::{
    Decision, Principal, ServerAccess, ToolAccess, decide_server, decide_tool, parse_groups,
};
pub use digest::json_digest;
pub use manifest::{
    AccessSection, DataClassification, Manifest, PolicySection, Problem, Sensitivity,
    ServerSection, ToolSection, is_approver, is_valid_name,
};
pub use redact::{MAX_AUDITED_ARGUMENTS, REDACTED, redact_arguments};
pub use scan::{Finding, scan_tool};
