//! Fuzz target `runs`: the checks of `strata_fuzz::runs` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::runs(data));
