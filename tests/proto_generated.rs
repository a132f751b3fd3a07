//! `src/proto/*.rs` are generated from `proto/*.proto` by prost-build (with protox, a
//! pure-Rust protobuf compiler) and checked in, so that building strata needs neither. This
//! test generates them again and fails if the checked-in files differ; to update them after
//! changing a schema:
//!
//! `STRATA_REGENERATE_PROTO=1 cargo test --release --test proto_generated`

use std::path::Path;

#[test]
fn the_checked_in_protobuf_code_matches_the_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tempfile::tempdir().unwrap();
    // As a build script would: from the package's folder, where `cargo test` runs tests.
    std::env::set_current_dir(root).unwrap();
    let files = ["proto/hyperlog.proto", "proto/strata.proto"];
    let descriptors = protox::compile(files, ["proto"]).unwrap();
    prost_build::Config::new()
        .out_dir(out.path())
        .compile_fds(descriptors)
        .unwrap();
    let regenerate = std::env::var_os("STRATA_REGENERATE_PROTO").is_some();
    for name in ["hyperlog.rs", "strata.rs"] {
        let fresh = std::fs::read_to_string(out.path().join(name)).unwrap();
        let checked_in = root.join("src/proto").join(name);
        if regenerate {
            std::fs::write(&checked_in, &fresh).unwrap();
            continue;
        }
        let current = std::fs::read_to_string(&checked_in).unwrap_or_default();
        assert!(
            current == fresh,
            "src/proto/{name} does not match proto/*.proto: regenerate it with\n  \
             STRATA_REGENERATE_PROTO=1 cargo test --release --test proto_generated"
        );
    }
}
