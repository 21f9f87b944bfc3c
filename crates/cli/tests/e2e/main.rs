//! End-to-end tests: they start the real `switchboard` binary on loopback ports chosen by the OS
//! and drive it with real MCP clients (rmcp, the official Python SDK, the MCP Inspector CLI) and
//! the official conformance suite. Tools that are not installed are skipped with a message, except
//! under `CI=true`, where a missing tool fails the test.

#![allow(unreachable_pub)]

mod airflow;
mod approvals;
mod bench;
mod clients;
mod conformance;
mod declarative;
mod deploy;
mod faults;
mod governance;
mod harness;
mod helm;
mod knowledge;
mod observability;
mod oidc;
mod openapi;
mod policies;
mod proposals;
mod replicas;
mod reviews;
mod spark;
mod spiffe;
mod sql;
mod surfaces;
mod traces;
mod ui;
