//! Arguments several commands share, and how they become library values: dataset names
//! and row keys (text as written, or hex), row values, versions, views; and the errors for
//! what they name that does not exist.
//!
//! A dataset name or row key argument is its text exactly as written (`0xff` is the text
//! `0xff`); `--hex-dataset` and `--hex` give bytes that are not text in hex. The empty name
//! and key are refused, as the library refuses them.

use strata::{Range, Repository, Version, View, excerpt};

use crate::error::{CliError, CliResult};
use crate::output::brief;

/// Which name an argument gives, for messages.
#[derive(Debug, Clone, Copy)]
pub enum Name {
    Dataset,
    Key,
    Prefix,
}

/// The bytes hex digits spell, a leading `0x` allowed; `None` when they are not hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text.strip_prefix("0x").unwrap_or(text)).ok()
}

/// Reads a dataset name or row key given on the command line: the text's bytes exactly as
/// written, or with `hex` the bytes its hex digits spell. The empty name is refused.
pub fn name_arg(text: &str, hex: bool, name: Name) -> CliResult<Vec<u8>> {
    let (arg, flag, whose) = match name {
        Name::Dataset => ("DATASET", "--hex-dataset", "dataset name's"),
        Name::Key => ("KEY", "--hex", "key's"),
        Name::Prefix => ("PREFIX", "--hex", "prefix's"),
    };
    let bytes = match hex {
        true => from_hex(text).ok_or_else(|| {
            strata::Error::InvalidArgument(format!(
                "{arg} {:?} is not hex (with {flag}, write the {whose} bytes as hex digits)",
                excerpt(text)
            ))
        })?,
        false => text.as_bytes().to_vec(),
    };
    if bytes.is_empty() {
        return Err(match name {
            Name::Dataset => strata::Error::empty_dataset(),
            Name::Key => strata::Error::empty_key(),
            Name::Prefix => return Ok(bytes),
        }
        .into());
    }
    Ok(bytes)
}

/// A dataset name and row key, as every row command takes them.
#[derive(Debug, clap::Args)]
pub struct RowArgs {
    /// The dataset: its name exactly as written (with --hex-dataset, in hex).
    pub dataset: String,
    /// The row key: its text exactly as written, `0x…` included (with --hex, in hex).
    pub key: String,

    /// KEY is given in hex, for a key that is not text: `--hex ff00` (or `0xff00`).
    #[arg(long)]
    pub hex: bool,

    /// DATASET is given in hex, for a name that is not text.
    #[arg(long)]
    pub hex_dataset: bool,
}

impl RowArgs {
    /// The dataset name and row key as bytes.
    pub fn parse(&self) -> CliResult<(Vec<u8>, Vec<u8>)> {
        Ok((
            name_arg(&self.dataset, self.hex_dataset, Name::Dataset)?,
            name_arg(&self.key, self.hex, Name::Key)?,
        ))
    }

    /// The arguments as given, for a hint naming another command.
    pub fn words(&self) -> String {
        let flag = |on: bool, flag: &'static str| if on { flag } else { "" };
        format!(
            "{}{} {}{}",
            flag(self.hex_dataset, "--hex-dataset "),
            self.dataset,
            flag(self.hex, "--hex "),
            self.key
        )
    }
}

/// `--dataset NAME [--hex-dataset]`, as `import` and `export` take it.
#[derive(Debug, clap::Args)]
pub struct DatasetOption {
    /// The dataset: its name exactly as written (with --hex-dataset, in hex).
    #[arg(long, short)]
    pub dataset: String,

    /// DATASET is given in hex (for a name that is not text): `--hex-dataset ff00`.
    #[arg(long)]
    pub hex_dataset: bool,
}

impl DatasetOption {
    pub fn name(&self) -> CliResult<Vec<u8>> {
        name_arg(&self.dataset, self.hex_dataset, Name::Dataset)
    }
}

/// `--at VERSION`: where a read looks.
#[derive(Debug, Clone, clap::Args)]
pub struct AtOption {
    /// Read at this version instead of the current view (a prefix of 4+ characters,
    /// HEAD, HEAD~N, latest).
    #[arg(long, value_name = "VERSION")]
    pub at: Option<String>,
}

impl AtOption {
    /// The view a read uses: `--at VERSION` when given, else the current view (the
    /// persistent checkout, or latest).
    pub fn view(&self, repo: &Repository) -> CliResult<View> {
        Ok(match &self.at {
            Some(version) => repo.at(&repo.resolve(version)?)?,
            None => repo.view()?,
        })
    }
}

/// The versions named on the command line (prefixes, `HEAD`, `HEAD~N`, `latest`).
pub fn versions(repo: &Repository, names: &[String]) -> CliResult<Vec<Version>> {
    Ok(names
        .iter()
        .map(|name| repo.resolve(name))
        .collect::<strata::Result<_>>()?)
}

/// The error for a row that does not exist (exit code 1).
pub fn row_not_found(dataset: &[u8], key: &[u8]) -> CliError {
    // Keys used to be given as `0x<hex>`: say how that is written now.
    let looks_hex = key.strip_prefix(b"0x").is_some_and(|digits| {
        std::str::from_utf8(digits).is_ok_and(|d| from_hex(d).is_some_and(|b| !b.is_empty()))
    });
    CliError::NotFound(format!(
        "not found: row {} in dataset {}{}",
        brief(key),
        brief(dataset),
        if looks_hex {
            " (keys are taken as written; to give a key's bytes in hex, pass --hex)"
        } else {
            ""
        }
    ))
}

/// Fails unless `dataset` has a live row in `view`, naming the datasets that do.
pub fn require_dataset(view: &View, dataset: &[u8]) -> CliResult {
    let mut first = view.range(dataset, Range::all().keys_only().limit(1));
    if first.next().transpose()?.is_some() {
        return Ok(());
    }
    let names = view.datasets()?;
    let known = match names.len() {
        0 => "there are no datasets".to_string(),
        n => {
            let shown: Vec<String> = names.iter().take(5).map(|n| brief(n)).collect();
            let more = if n > 5 { ", …" } else { "" };
            format!("datasets: {}{more}", shown.join(", "))
        }
    };
    Err(CliError::NotFound(format!(
        "not found: dataset {} (no rows at {}; {known})",
        brief(dataset),
        match view.version() {
            Some(version) => version.short().to_string(),
            None => "latest".to_string(),
        },
    )))
}

/// Parses a row value given on the command line: JSON (stored compact, with key order and
/// number text kept) unless `raw`.
pub fn encode_value(value: &str, raw: bool, what: &str) -> CliResult<Vec<u8>> {
    if raw {
        return Ok(value.as_bytes().to_vec());
    }
    match strata::compact_json(value.as_bytes()) {
        Ok(json) => Ok(json.into_owned()),
        Err(strata::Error::Malformed { reason, .. }) => Err(CliError::Input(format!(
            "{what} is not valid JSON ({}); pass --raw to store the text as given",
            excerpt(&reason)
        ))),
        Err(other) => Err(other.into()),
    }
}
