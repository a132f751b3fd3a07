//! The two secrets of a repository: its device key (ed25519, through `ed25519-dalek`),
//! which signs every node it writes and names its log, and the project key (32 random
//! bytes), which every member holds and which opens the encrypted sessions and sync files.
//!
//! Each is kept in its own file, as hex text, created readable and writable by its owner
//! only (mode 0600 on Unix); a key file that others can read is refused, as ssh refuses
//! such a private key.

use std::io::Write;
use std::path::Path;

use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};

/// A device's key pair: signs the nodes its repository writes. Its public key, in hex,
/// is the repository's log id.
#[derive(Clone)]
pub struct DeviceKey(SigningKey);

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DeviceKey").field(&self.log_id()).finish()
    }
}

impl DeviceKey {
    /// A new random key pair.
    pub fn generate() -> DeviceKey {
        DeviceKey(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    /// The public key.
    pub fn public(&self) -> VerifyingKey {
        self.0.verifying_key()
    }

    /// The log this device writes: its public key in hex.
    pub fn log_id(&self) -> String {
        hex::encode(self.public().as_bytes())
    }

    /// The underlying signing key.
    pub(super) fn signing(&self) -> &SigningKey {
        &self.0
    }

    pub(super) fn load(path: &Path) -> Result<DeviceKey> {
        Ok(DeviceKey(SigningKey::from_bytes(&read_secret(path)?)))
    }

    pub(super) fn save(&self, path: &Path) -> Result<()> {
        write_secret(path, &self.0.to_bytes())
    }
}

/// The log's public key when `log` is a device log (64 hex digits naming an ed25519
/// public key); `None` for any other log (hyperlog's, or a repository's from before keys).
pub fn device_of_log(log: &str) -> Option<VerifyingKey> {
    if log.len() != 64 || log.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut raw = [0u8; 32];
    hex::decode_to_slice(log, &mut raw).ok()?;
    VerifyingKey::from_bytes(&raw).ok()
}

/// The project's shared secret: whoever holds it may join the project's sessions and read
/// its sync files. Shown as 64 hex digits (the invite).
#[derive(Clone, PartialEq, Eq)]
pub struct ProjectKey([u8; 32]);

impl std::fmt::Debug for ProjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProjectKey(..)")
    }
}

impl ProjectKey {
    /// A new random project key.
    pub fn generate() -> ProjectKey {
        ProjectKey(rand::random())
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 hex digits (what an invite shows).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Reads a key given as 64 hex digits (surrounding white space ignored).
    pub fn from_hex(text: &str) -> Result<ProjectKey> {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut raw).map_err(|_| {
            Error::InvalidArgument(
                "a project key is 64 hex digits (from `strata project invite`)".into(),
            )
        })?;
        Ok(ProjectKey(raw))
    }

    pub(super) fn load(path: &Path) -> Result<ProjectKey> {
        read_secret(path).map(ProjectKey)
    }

    pub(super) fn save(&self, path: &Path) -> Result<()> {
        write_secret(path, &self.0)
    }
}

/// Writes a 32-byte secret as hex to a new file that only its owner can read, replacing
/// any earlier one atomically.
fn write_secret(path: &Path, secret: &[u8; 32]) -> Result<()> {
    let context = |e| Error::io(format!("writing {}", path.display()), e);
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidArgument(format!("{} has no folder", path.display())))?;
    // tempfile creates its files with mode 0600.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(context)?;
    file.write_all(format!("{}\n", hex::encode(secret)).as_bytes())
        .map_err(context)?;
    file.as_file().sync_all().map_err(context)?;
    file.persist(path).map_err(|e| context(e.error))?;
    Ok(())
}

/// Reads a secret written by [`write_secret`], refusing a file that others can read.
fn read_secret(path: &Path) -> Result<[u8; 32]> {
    let context = |e| Error::io(format!("reading {}", path.display()), e);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(context)?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(Error::Security(format!(
                "{} can be read by others (mode {:o}); make it readable by its owner only (chmod 600)",
                path.display(),
                mode & 0o777
            )));
        }
    }
    let text = std::fs::read_to_string(path).map_err(context)?;
    let mut raw = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut raw)
        .map_err(|_| Error::Security(format!("{} does not hold a key", path.display())))?;
    Ok(raw)
}
