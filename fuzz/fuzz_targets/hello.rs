//! Fuzz target `hello`: the checks of `strata_fuzz::hello` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::hello(data));
