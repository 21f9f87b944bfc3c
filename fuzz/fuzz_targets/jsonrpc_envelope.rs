//! A client's POST to an MCP route (`headers\n\nbody`): the JSON-RPC envelope and its
//! standard headers, as the gateway reads them before any decision.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::client_message(data));
