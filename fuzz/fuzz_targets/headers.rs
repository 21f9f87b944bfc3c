//! Request headers alone: bearer token, standard MCP headers, sealed session id, Host.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::headers(data));
