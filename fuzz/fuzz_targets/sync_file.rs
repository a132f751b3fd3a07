//! Fuzz target `sync_file`: the checks of `strata_fuzz::sync_file` (fuzz/src/lib.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| strata_fuzz::sync_file(data));
