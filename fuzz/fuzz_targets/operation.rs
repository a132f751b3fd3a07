//! Fuzz target `operation`: the checks of `strata_fuzz::operation` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::operation(data));
