//! REST handlers, one module per resource. Handlers extract, call the store or `service`, and map.

pub(crate) mod access;
pub(crate) mod audit;
pub(crate) mod governance;
pub(crate) mod insights;
pub(crate) mod mcp_registry;
pub(crate) mod proposals;
pub(crate) mod servers;
