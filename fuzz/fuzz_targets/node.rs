//! Fuzz target `node`: the checks of `strata_fuzz::node` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::node(data));
