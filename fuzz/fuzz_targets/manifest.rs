//! What an owner registers: the manifest (`switchboard.toml`) and the server's own Cedar policies.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    catalog::fuzzing::manifest(data);
    policy::fuzzing::owner_policies(data);
});
