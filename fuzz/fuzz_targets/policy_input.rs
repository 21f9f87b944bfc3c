//! One call's policy input: caller, groups, surface, channel, tool and arguments.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| policy::fuzzing::decide(data));
