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

#[test]
fn rekey_shuts_out_whoever_keeps_the_old_key() {
    let a = Repo::new();
    let (b, removed) = (Repo::new(), Repo::new());
    let old_key = a.ok(&["project", "invite"]).trim().to_string();
    b.ok(&["project", "join", &old_key]);
    removed.ok(&["project", "join", &old_key]);
    a.put("sites", "A", r#"{"n":1}"#);

    let output = a.run(&["project", "rekey"]);
    assert!(output.status.success());
    let new_key = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert_eq!(new_key.len(), 64);
    assert_ne!(new_key, old_key);
    assert_eq!(a.ok(&["project", "invite"]).trim(), new_key);
    assert!(String::from_utf8_lossy(&output.stderr).contains("strata project join"));

    // The old key no longer opens a session with `a`; the new one does.
    for member in [&b, &removed] {
        let error = member.fail(&["sync", a.path().to_str().unwrap()]);
        assert!(error.contains("project key"), "{error}");
    }
    b.ok(&["project", "join", &new_key]);
    b.ok(&["sync", a.path().to_str().unwrap()]);
    assert!(b.ok(&["get", "sites", "A"]).contains(r#""n":1"#));
    assert!(a.json(&["project", "rekey", "--json"])["project_key"].is_string());
}
