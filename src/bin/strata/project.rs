//! `project`: who may join — the device key and project key of a repository, invites,
//! joining, the device list and removal (docs/security.md).

use std::path::Path;
use std::time::Duration;

use serde_json::json;
use strata::{Identity, ProjectKey};

use crate::command::Run;
use crate::error::{CliError, CliResult};
use crate::open::{RepoPath, WriteRepo, open_for_writing};
use crate::output::{Output, Record, note, show_time, warning};

/// Project membership: keys, invites, devices, removal.
#[derive(Debug, clap::Subcommand)]
pub enum ProjectCommand {
    /// Give a repository created before keys its device key and a new project key.
    ///
    /// Example: `strata project init`
    Init(InitArgs),
    /// Print the project key, for a new device to join with (keep it secret: whoever holds
    /// it can read and write the project).
    ///
    /// Example: `strata project invite`
    Invite(ShowArgs),
    /// Make a new project key and print it as the new invite: after removing a device that
    /// must lose access (it still holds the old key), give the new one to the remaining
    /// members (`strata project join NEWKEY`). Until a member joins it, it cannot sync with
    /// this device.
    ///
    /// Example: `strata project rekey`
    Rekey(RekeyArgs),
    /// Join the project whose key another member's `strata project invite` printed.
    ///
    /// Example: `strata project join 4f1c…e2 --name "field tablet"`
    Join(JoinArgs),
    /// Set this device's name, as the other members see it.
    ///
    /// Example: `strata project name "office laptop"`
    Name(NameArgs),
    /// List the project's devices: key, name, entries, first and last seen, removal.
    ///
    /// Example: `strata project devices --json`
    Devices(ShowArgs),
    /// Remove a device: its later entries are refused wherever the removal has synced;
    /// its past entries stay as history.
    ///
    /// Example: `strata project remove 9a3b…07`
    Remove(RemoveArgs),
    /// Whether entries in logs no device key signs (a plain hyperlog peer's, or from a
    /// repository without keys) are accepted from `--plain` peers: `yes` or `no`. Secure
    /// sessions and sealed bundles carry signed entries only, whatever this says.
    ///
    /// Example: `strata project unsigned yes` (before a `--plain` sync with hyperlog)
    Unsigned(UnsignedArgs),
}

impl Run for ProjectCommand {
    fn run(self, top: &RepoPath) -> CliResult {
        match self {
            ProjectCommand::Init(args) => args.run(top),
            ProjectCommand::Invite(args) => invite(&args, top),
            ProjectCommand::Rekey(args) => args.run(top),
            ProjectCommand::Join(args) => args.run(top),
            ProjectCommand::Name(args) => args.run(top),
            ProjectCommand::Devices(args) => devices(&args, top),
            ProjectCommand::Remove(args) => args.run(top),
            ProjectCommand::Unsigned(args) => args.run(top),
        }
    }
}

/// The identity of `storage`, or an error saying how to get one.
fn identity_of(storage: &Path) -> CliResult<Identity> {
    Identity::load(storage)?.ok_or_else(|| {
        CliError::NotFound(
            "this repository has no keys (it was created before them): run `strata project init`"
                .into(),
        )
    })
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub repo: WriteRepo,
}

impl Run for InitArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.path.storage(top)?;
        // Holding the repository keeps another process from writing meanwhile.
        let repo = self.repo.open(top)?;
        let identity = Identity::create(&storage)?;
        drop(repo);
        note(
            "unsigned entries (this repository's history from before keys, and peers without keys) travel only over --plain sessions and bundles, and are accepted from them until `strata project unsigned no`",
        );
        println!("device {}", identity.log_id());
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: RepoPath,
}

fn invite(args: &ShowArgs, top: &RepoPath) -> CliResult {
    let identity = identity_of(&args.repo.storage(top)?)?;
    show_key(&identity, args.json)
}

/// Prints `identity`'s project key, with the warning it deserves.
fn show_key(identity: &Identity, json: bool) -> CliResult {
    let key = identity.project_key().to_hex();
    warning(
        "this key lets whoever holds it read and write the project: share it only with new members",
    );
    let mut out = Output::new(json);
    out.show(&Record {
        json: json!({ "project_key": key }),
        text: key.clone(),
    })?;
    out.finish()
}

#[derive(Debug, clap::Args)]
pub struct RekeyArgs {
    /// Print the new key as JSON.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub repo: WriteRepo,
}

impl Run for RekeyArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.path.storage(top)?;
        identity_of(&storage)?;
        // Holding the repository keeps another process from writing meanwhile.
        let repo = self.repo.open(top)?;
        let identity = Identity::join(&storage, ProjectKey::generate())?;
        drop(repo);
        note(
            "a new project key: every remaining member runs `strata project join KEY` with it; until then they cannot sync with this device",
        );
        show_key(&identity, self.json)
    }
}

#[derive(Debug, clap::Args)]
pub struct JoinArgs {
    /// The project key (64 hex digits) from `strata project invite`.
    pub key: String,

    /// This device's name, as the other members see it.
    #[arg(long)]
    pub name: Option<String>,

    #[command(flatten)]
    pub repo: WriteRepo,
}

impl Run for JoinArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let project = ProjectKey::from_hex(&self.key)?;
        let storage = self.repo.path.storage(top)?;
        let repo = self.repo.open(top)?;
        drop(repo);
        let identity = Identity::join(&storage, project)?;
        if let Some(name) = &self.name {
            let repo = open_for_writing(&storage, Duration::from_secs(self.repo.wait))?;
            identity.set_name(repo.graph(), name)?;
        }
        println!("joined the project as device {}", identity.log_id());
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The name.
    pub name: String,

    #[command(flatten)]
    pub repo: WriteRepo,
}

impl Run for NameArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.path.storage(top)?;
        let identity = identity_of(&storage)?;
        let repo = self.repo.open(top)?;
        identity.set_name(repo.graph(), &self.name)?;
        Ok(())
    }
}

fn devices(args: &ShowArgs, top: &RepoPath) -> CliResult {
    let identity = identity_of(&args.repo.storage(top)?)?;
    let repo = args.repo.read(top)?;
    let mut out = Output::new(args.json);
    let when = |ms: Option<u64>| ms.map_or_else(|| "-".to_string(), show_time);
    for device in identity.devices(repo.graph())? {
        let mut text = format!(
            "{}  {:<16} {:>7} entries  first {}  last {}",
            device.key,
            device.name.as_deref().unwrap_or("-"),
            device.entries,
            when(device.first_seen),
            when(device.last_seen),
        );
        if let Some(after) = device.removed_after {
            text.push_str(&format!("  removed after entry {after}"));
        }
        if device.this_device {
            text.push_str("  (this device)");
        }
        out.show(&Record {
            json: json!({
                "key": device.key,
                "name": device.name,
                "entries": device.entries,
                "first_seen": device.first_seen,
                "last_seen": device.last_seen,
                "removed_after": device.removed_after,
                "this_device": device.this_device,
            }),
            text,
        })?;
    }
    out.finish()
}

#[derive(Debug, clap::Args)]
pub struct RemoveArgs {
    /// The device's key (its log id, from `strata project devices`).
    pub device: String,

    #[command(flatten)]
    pub repo: WriteRepo,
}

impl Run for RemoveArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let storage = self.repo.path.storage(top)?;
        let identity = identity_of(&storage)?;
        let repo = self.repo.open(top)?;
        identity.remove(repo.graph(), &self.device)?;
        let after = repo.graph().log_head(&self.device)?;
        println!(
            "removed {}: its entries after {after} are refused wherever this removal syncs (entries already copied stay)",
            self.device
        );
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
pub struct UnsignedArgs {
    /// `yes` to accept unsigned entries from `--plain` peers, `no` to refuse them; shows
    /// the setting without.
    #[arg(value_parser = ["yes", "no"])]
    pub accept: Option<String>,

    #[command(flatten)]
    pub repo: RepoPath,
}

impl Run for UnsignedArgs {
    fn run(self, top: &RepoPath) -> CliResult {
        let identity = identity_of(&self.repo.storage(top)?)?;
        if let Some(accept) = &self.accept {
            identity.set_accept_unsigned(accept == "yes")?;
        }
        let accepted = identity.accepts_unsigned();
        println!(
            "unsigned entries are {} (secure sessions and sealed bundles never carry them)",
            if accepted {
                "accepted from --plain peers"
            } else {
                "refused"
            }
        );
        Ok(())
    }
}
