//! Fuzz target `commit`: the checks of `strata_fuzz::commit` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::commit(data));
