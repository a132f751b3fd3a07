//! Fuzz target `frame`: the checks of `strata_fuzz::frame` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::frame(data));
