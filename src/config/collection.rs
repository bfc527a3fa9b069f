//! `[collection]`: the legal interest rates table (docs/CONFIGURATION.md, "Settings";
//! docs/COLLECTION.md).

use std::path::PathBuf;

use serde::Deserialize;

/// `[collection]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CollectionSettings {
    /// An operator's rates table (TOML, same format as `src/domain/collection/rates.toml`)
    /// replacing the one built in, e.g. with a newly published half-year.
    pub rates_file: Option<PathBuf>,
    /// `[collection] missing_rate`: `apply_latest` (default) or `refuse` for letters needing
    /// a half-year absent from the rates table.
    pub missing_rate: crate::domain::collection::MissingRate,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileCollection {
    rates_file: Option<PathBuf>,
    missing_rate: Option<crate::domain::collection::MissingRate>,
}

/// Reads `[collection]`: both keys are checked when the rates table is loaded.
pub(super) fn resolve(file: FileCollection) -> CollectionSettings {
    CollectionSettings {
        rates_file: file.rates_file,
        missing_rate: file.missing_rate.unwrap_or_default(),
    }
}
