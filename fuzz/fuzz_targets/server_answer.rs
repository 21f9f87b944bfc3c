//! A server's answer, as JSON or an event stream in uneven chunks, as the gateway inspects it.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::server_answer(data));
