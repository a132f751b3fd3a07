//! Fuzz target `keys`: the checks of `strata_fuzz::key_parts` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::key_parts(data));
