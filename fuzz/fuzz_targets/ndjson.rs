//! Fuzz target `ndjson`: the checks of `strata_fuzz::ndjson` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::ndjson(data));
