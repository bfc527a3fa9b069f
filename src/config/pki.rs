//! `[pki]`: the operator's certificates and keys, or none for the development PKI
//! (docs/CONFIGURATION.md, "Production keys", "Development PKI" and "Key rotation").

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ConfigError, SecretText};

/// Where a signing key lives: a PKCS#8 PEM file, or a token reached through PKCS#11 and
/// named by an RFC 7512 URI (`pkcs11:token=recommande;object=seal`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PKCS#8 PEM file.
    File(PathBuf),
    /// A key inside a PKCS#11 token; it never leaves it.
    Pkcs11(Pkcs11Uri),
}

impl KeySource {
    /// A setting's value: a `pkcs11:` URI, else a file path.
    pub fn parse(value: &str, key: &'static str) -> Result<Self, ConfigError> {
        if value.starts_with("pkcs11:") {
            Pkcs11Uri::parse(value)
                .map(KeySource::Pkcs11)
                .map_err(|message| ConfigError::Invalid { key, message })
        } else {
            Ok(KeySource::File(PathBuf::from(value)))
        }
    }

    /// The file, for a key file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            KeySource::File(path) => Some(path),
            KeySource::Pkcs11(_) => None,
        }
    }
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::File(path) => write!(f, "{}", path.display()),
            KeySource::Pkcs11(uri) => write!(f, "{uri}"),
        }
    }
}

/// The parts of an RFC 7512 PKCS#11 URI the service uses to find a key: the token (by
/// label, serial number or slot number) and the object (by label and/or id). Other path
/// attributes (`manufacturer`, `model`, `library-*`, `type`) are accepted and ignored; a
/// PIN in the URI (`pin-value`, `pin-source`) is refused: it belongs in
/// `[pki.pkcs11]`'s PIN settings, never in a value that is logged.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pkcs11Uri {
    /// `token=` (CKA token label).
    pub token: Option<String>,
    /// `serial=` (token serial number).
    pub serial: Option<String>,
    /// `slot-id=` (slot number).
    pub slot_id: Option<u64>,
    /// `object=` (CKA_LABEL of the key).
    pub object: Option<String>,
    /// `id=` (CKA_ID of the key, bytes).
    pub id: Option<Vec<u8>>,
}

impl Pkcs11Uri {
    /// Parses `pkcs11:attr=value;attr=value[?query]` with percent-encoded values
    /// (RFC 7512 §2.3). At least `object` or `id` must name the key.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let rest = uri
            .strip_prefix("pkcs11:")
            .ok_or_else(|| format!("{uri:?} is not a pkcs11: URI"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut parsed = Pkcs11Uri::default();
        for part in path.split(';').filter(|p| !p.is_empty()) {
            let (name, raw) = part
                .split_once('=')
                .ok_or_else(|| format!("{uri:?}: {part:?} is not attribute=value"))?;
            let value = percent_decode(raw).map_err(|e| format!("{uri:?}: {name}: {e}"))?;
            let text = || {
                String::from_utf8(value.clone())
                    .map_err(|_| format!("{uri:?}: {name} is not UTF-8"))
            };
            match name {
                "token" => parsed.token = Some(text()?),
                "serial" => parsed.serial = Some(text()?),
                "object" => parsed.object = Some(text()?),
                "id" => parsed.id = Some(value),
                "slot-id" => {
                    parsed.slot_id = Some(
                        text()?
                            .parse()
                            .map_err(|_| format!("{uri:?}: slot-id must be a number"))?,
                    )
                }
                "manufacturer"
                | "model"
                | "library-manufacturer"
                | "library-description"
                | "library-version"
                | "slot-description"
                | "slot-manufacturer"
                | "type" => {}
                other => return Err(format!("{uri:?}: unknown attribute {other:?}")),
            }
        }
        for part in query.split('&').filter(|p| !p.is_empty()) {
            let name = part.split_once('=').map_or(part, |(n, _)| n);
            if name == "pin-value" || name == "pin-source" {
                return Err(format!(
                    "a PIN may not be written in a key URI: set [pki.pkcs11] pin_file or RECOMMANDE_PKI_PKCS11_PIN ({name} found)"
                ));
            }
        }
        if parsed.object.is_none() && parsed.id.is_none() {
            return Err(format!(
                "{uri:?} names no key: add object=<label> (or id=<hex bytes>)"
            ));
        }
        Ok(parsed)
    }
}

impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(t) = &self.token {
            parts.push(format!("token={}", percent_encode(t.as_bytes())));
        }
        if let Some(s) = &self.serial {
            parts.push(format!("serial={}", percent_encode(s.as_bytes())));
        }
        if let Some(n) = self.slot_id {
            parts.push(format!("slot-id={n}"));
        }
        if let Some(o) = &self.object {
            parts.push(format!("object={}", percent_encode(o.as_bytes())));
        }
        if let Some(id) = &self.id {
            let hex: String = id.iter().map(|b| format!("%{b:02x}")).collect();
            parts.push(format!("id={hex}"));
        }
        write!(f, "pkcs11:{}", parts.join(";"))
    }
}

fn percent_decode(raw: &str) -> Result<Vec<u8>, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent escape in {raw:?}"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

fn percent_encode(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `[pki.pkcs11]`: the PKCS#11 module that holds the keys named by `pkcs11:` URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pkcs11Settings {
    /// The module (shared library) path, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The user PIN, from `RECOMMANDE_PKI_PKCS11_PIN` (or its `_FILE`) or `pin_file`.
    pub pin: PinSource,
    /// Sessions kept open for signing (1 to 64, default 4): signatures from several
    /// workers run in parallel, each on its own session.
    pub sessions: usize,
}

/// Where the token's user PIN comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PinSource {
    /// Given by the environment.
    Value(SecretText),
    /// Read from this file at start (trailing newline removed).
    File(PathBuf),
}

/// Default signing sessions per token.
pub const DEFAULT_PKCS11_SESSIONS: usize = 4;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePkcs11 {
    module: Option<PathBuf>,
    pin_file: Option<PathBuf>,
    /// Only from the environment: [`super::source::read`] refuses it in the file.
    pin: Option<String>,
    sessions: Option<usize>,
}

/// Operator-supplied certificates and keys (production). All absent = development PKI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiSettings {
    /// PEM chain of the seal certificate (leaf first).
    pub seal_certificate: Option<PathBuf>,
    /// Key of the seal certificate: a PKCS#8 PEM file or a `pkcs11:` URI.
    pub seal_key: Option<KeySource>,
    /// PEM chain of the embedded TSA's certificate.
    pub tsa_certificate: Option<PathBuf>,
    /// Key of the embedded TSA: a PKCS#8 PEM file or a `pkcs11:` URI.
    pub tsa_key: Option<KeySource>,
    /// PEM trust anchors that verify the seal and timestamp chains.
    pub roots: Option<PathBuf>,
    /// PEM files of retired roots (after a key rotation): not used to sign, still trusted to
    /// verify archived evidence, served at `/v1/trust/roots.pem` and put in bundles.
    pub retired_roots: Vec<PathBuf>,
    /// Validity in days of the leaf certificates a generated development PKI gets (default
    /// 3652); short values let tests reach a certificate's expiry.
    pub development_validity_days: u32,
    /// The PKCS#11 module for `pkcs11:` keys (`[pki.pkcs11]`).
    pub pkcs11: Option<Pkcs11Settings>,
}

impl Default for PkiSettings {
    fn default() -> Self {
        PkiSettings {
            seal_certificate: None,
            seal_key: None,
            tsa_certificate: None,
            tsa_key: None,
            roots: None,
            retired_roots: Vec::new(),
            development_validity_days: DEFAULT_DEVELOPMENT_VALIDITY_DAYS,
            pkcs11: None,
        }
    }
}

pub use crate::core::pki::DEFAULT_DEVELOPMENT_VALIDITY_DAYS;

impl PkiSettings {
    /// True when no production key material is configured.
    pub fn is_development(&self) -> bool {
        self.seal_certificate.is_none()
            && self.seal_key.is_none()
            && self.tsa_certificate.is_none()
            && self.tsa_key.is_none()
            && self.roots.is_none()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FilePki {
    seal_certificate: Option<PathBuf>,
    seal_key: Option<String>,
    tsa_certificate: Option<PathBuf>,
    tsa_key: Option<String>,
    roots: Option<PathBuf>,
    #[serde(default)]
    retired_roots: Vec<PathBuf>,
    development_validity_days: Option<u32>,
    pkcs11: Option<FilePkcs11>,
}

/// Checks `[pki]`: key URIs parse, a `pkcs11:` key has its module and PIN, the development
/// validity has a range (1 to 36525 days); the files themselves are read and checked when
/// the service starts.
pub(super) fn resolve(file: FilePki) -> Result<PkiSettings, ConfigError> {
    let key = |value: Option<String>, name| value.map(|v| KeySource::parse(&v, name)).transpose();
    let pki = PkiSettings {
        seal_certificate: file.seal_certificate,
        seal_key: key(file.seal_key, "pki.seal_key")?,
        tsa_certificate: file.tsa_certificate,
        tsa_key: key(file.tsa_key, "pki.tsa_key")?,
        roots: file.roots,
        retired_roots: file.retired_roots,
        development_validity_days: file
            .development_validity_days
            .unwrap_or(DEFAULT_DEVELOPMENT_VALIDITY_DAYS),
        pkcs11: file.pkcs11.map(resolve_pkcs11).transpose()?,
    };
    let uses_token = [&pki.seal_key, &pki.tsa_key]
        .into_iter()
        .any(|k| matches!(k, Some(KeySource::Pkcs11(_))));
    if uses_token && pki.pkcs11.is_none() {
        return Err(ConfigError::Invalid {
            key: "pki.pkcs11.module",
            message: "a pkcs11: key needs [pki.pkcs11] module = \"/path/to/module.so\" and a PIN (pin_file or RECOMMANDE_PKI_PKCS11_PIN)".into(),
        });
    }
    if !(1..=36_525).contains(&pki.development_validity_days) {
        return Err(ConfigError::Invalid {
            key: "pki.development_validity_days",
            message: format!(
                "{} must be between 1 and 36525",
                pki.development_validity_days
            ),
        });
    }
    Ok(pki)
}

fn resolve_pkcs11(file: FilePkcs11) -> Result<Pkcs11Settings, ConfigError> {
    let module = file.module.ok_or_else(|| ConfigError::Invalid {
        key: "pki.pkcs11.module",
        message: "missing: the path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so)"
            .into(),
    })?;
    let pin = match (file.pin, file.pin_file) {
        (Some(pin), None) => PinSource::Value(SecretText::new(pin)),
        (None, Some(path)) => PinSource::File(path),
        (Some(_), Some(_)) => {
            return Err(ConfigError::Invalid {
                key: "pki.pkcs11.pin_file",
                message: "set either pin_file or RECOMMANDE_PKI_PKCS11_PIN, not both".into(),
            });
        }
        (None, None) => {
            return Err(ConfigError::Invalid {
                key: "pki.pkcs11.pin_file",
                message: "missing: the token's user PIN, in a file (pin_file) or in RECOMMANDE_PKI_PKCS11_PIN".into(),
            });
        }
    };
    let sessions = file.sessions.unwrap_or(DEFAULT_PKCS11_SESSIONS);
    if !(1..=64).contains(&sessions) {
        return Err(ConfigError::Invalid {
            key: "pki.pkcs11.sessions",
            message: format!("{sessions} must be between 1 and 64"),
        });
    }
    Ok(Pkcs11Settings {
        module,
        pin,
        sessions,
    })
}
