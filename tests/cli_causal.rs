//! Through the binary: only commits are versions, and a merge never forks.

mod cli_support;

use cli_support::Repo;

#[test]
fn a_plumbing_node_is_never_a_version_parent_or_head() {
    let repo = Repo::new();
    repo.put("s", "a", "1");
    let b = repo.put("s", "b", "2");
    let plumbing = repo.ok(&["graph", "add", "hello"]).trim().to_string();
    let c = repo.put("s", "c", "3");
    let status = repo.json(&["status", "--json"]);
    assert_eq!(status["heads"], 1, "{status}");
    assert_eq!(status["rows"], 3);
    assert_eq!(repo.ok(&["heads"]).lines().count(), 1);
    let parents = repo.json(&["graph", "get", &c, "--json"])["links"].clone();
    assert_eq!(parents, serde_json::json!([b]));
    assert_eq!(repo.ok(&["get", "s", "a", "--at", &c]), "1\n");
    for command in [
        vec!["checkout", plumbing.as_str()],
        vec!["get", "s", "a", "--at", plumbing.as_str()],
        vec!["merge", plumbing.as_str(), c.as_str()],
    ] {
        let stderr = repo.fail(&command);
        assert!(stderr.contains("unknown version"), "{command:?}: {stderr}");
    }
}

#[test]
fn merging_an_ancestor_or_a_version_that_is_not_a_head_is_refused() {
    let repo = Repo::new();
    let a = repo.put("d", "k", "1");
    let b = repo.put("d", "k", "2");
    repo.put("d", "k", "3");
    let stderr = repo.fail(&["merge", &a, &b]);
    assert!(stderr.contains("nothing to merge"), "{stderr}");
    let fork = repo
        .ok(&["put", "d", "x", "4", "--replaces", &a])
        .trim()
        .to_string();
    let stderr = repo.fail(&["merge", &b, &fork]);
    assert!(stderr.contains("not a head"), "{stderr}");
    assert_eq!(
        repo.json(&["status", "--json"])["heads"],
        2,
        "nothing was written"
    );
}
