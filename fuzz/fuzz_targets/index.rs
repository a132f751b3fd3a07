//! Fuzz target `index`: the checks of `strata_fuzz::index` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::index(data));
