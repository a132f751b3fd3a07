//! `strata project`: keys at init, invites, joining, names, the device list and removal,
//! through the real binary (docs/security.md).

mod cli_support;

use cli_support::Repo;

#[test]
fn init_makes_keys_and_project_commands_manage_members() {
    let a = Repo::new();
    let b = Repo::new();
    let invite = a.ok(&["project", "invite"]);
    let key = invite.trim();
    assert_eq!(key.len(), 64, "{invite}");
    assert_eq!(a.json(&["project", "invite", "--json"])["project_key"], key);
    assert_ne!(b.ok(&["project", "invite"]).trim(), key);

    b.ok(&["project", "join", key, "--name", "field tablet"]);
    assert_eq!(b.ok(&["project", "invite"]).trim(), key);
    let devices = b.ndjson(&["project", "devices", "--json"]);
    assert_eq!(devices.len(), 1, "{devices:?}");
    assert_eq!(devices[0]["name"], "field tablet");
    assert_eq!(devices[0]["this_device"], true);
    let b_key = devices[0]["key"].as_str().unwrap().to_string();
    assert!(b.ok(&["project", "devices"]).contains("(this device)"));

    a.put("sites", "A", "1");
    a.ok(&["project", "name", "office"]);
    let removed = a.ok(&["project", "remove", &b_key]);
    assert!(removed.contains("refused"), "{removed}");
    let error = a.fail(&["project", "remove", "not-a-key"]);
    assert!(error.contains("64 hex"), "{error}");
    let error = a.fail(&["project", "join", "zz"]);
    assert!(error.contains("64 hex"), "{error}");

    assert!(a.ok(&["project", "unsigned"]).contains("refused"));
    assert!(a.ok(&["project", "unsigned", "yes"]).contains("accepted"));
    assert!(a.ok(&["project", "unsigned"]).contains("accepted"));

    // A repository from before keys is told how to get them, and gets them.
    let old = Repo::new();
    std::fs::remove_dir_all(old.storage().join("identity")).unwrap();
    let error = old.fail(&["project", "invite"]);
    assert!(error.contains("strata project init"), "{error}");
    old.ok(&["project", "init"]);
    assert_eq!(old.ok(&["project", "invite"]).trim().len(), 64);
}
