//! Fuzz target `message`: the checks of `strata_fuzz::message` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::message(data));
