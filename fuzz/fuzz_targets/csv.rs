//! Fuzz target `csv`: the checks of `strata_fuzz::csv` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::csv(data));
