//! Master keys: they wrap every document's data key (AES-256-GCM key wrapping).
//!
//! A master key is written `<id>:<base64 of 32 bytes>` (one line), in a key file listed in
//! `[archive] master_key_files` or in the `RECOMMANDE_MASTER_KEY` variable. Several keys may
//! be configured so they can rotate: the first one (the variable, then the files in order)
//! is the active key and wraps every new data key; the others only unwrap. `recommande
//! archive rewrap` re-wraps every data key under the active key, after which an old key can
//! be removed. Without any configured key, the development setup generates one on first start
//! in `DATA_DIR/keys/` (mode 0600), like the development PKI.

use std::path::{Path, PathBuf};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

use crate::core::cipher::DataKey;

/// Domain separation of wrapped data keys (bound with the key id and the document's SHA-256,
/// so a wrapped key cannot be moved to another document).
const WRAP_CONTEXT: &[u8] = b"recommande document data key v1";

/// A failure loading master keys or (un)wrapping a data key.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file could not be read or written.
    #[error("master key file {path}: {source}")]
    Io {
        /// Which file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key is not `<id>:<base64 of 32 bytes>`.
    #[error("master key from {origin} is malformed: {reason}")]
    Malformed {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// Two configured keys share an id.
    #[error("two master keys have the id {0:?}")]
    DuplicateId(String),
    /// A data key is wrapped under a master key that is not configured.
    #[error("no master key with id {0:?} is configured")]
    Unknown(String),
    /// A wrapped data key does not open under its master key (altered, or another document's).
    #[error("the data key of document {0} does not unwrap under its master key")]
    Unwrap(String),
    /// The system random generator or the AEAD failed.
    #[error("cryptographic failure: {0}")]
    Crypto(&'static str),
}

struct MasterKey {
    id: String,
    key: LessSafeKey,
}

/// The configured master keys; the first is active.
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("ids", &self.ids()).finish()
    }
}

/// Name of the generated development master key file in `DATA_DIR/keys/`.
pub const DEVELOPMENT_KEY_FILE: &str = "development-master.key";

impl Keyring {
    /// Loads the keys: `env` (the `RECOMMANDE_MASTER_KEY` value, active) then `files` in
    /// order. With neither, loads or generates the development key under `data_dir/keys`.
    pub fn load(env: Option<&str>, files: &[PathBuf], data_dir: &Path) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        if let Some(text) = env {
            keys.push(parse_key(text, "RECOMMANDE_MASTER_KEY")?);
        }
        for path in files {
            let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                path: path.clone(),
                source,
            })?;
            keys.push(parse_key(&text, &path.display().to_string())?);
        }
        if keys.is_empty() {
            let path = data_dir.join("keys").join(DEVELOPMENT_KEY_FILE);
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => write_development_key(&path)?,
                Err(source) => return Err(KeyError::Io { path, source }),
            };
            keys.push(parse_key(&text, &path.display().to_string())?);
        }
        for (i, key) in keys.iter().enumerate() {
            if keys[..i].iter().any(|k| k.id == key.id) {
                return Err(KeyError::DuplicateId(key.id.clone()));
            }
        }
        Ok(Keyring { keys })
    }

    /// Id of the active key (wraps new data keys).
    pub fn active_id(&self) -> &str {
        // `load` never returns an empty keyring.
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Ids of every configured key, active first.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Whether a key with `id` is configured.
    pub fn has(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// Wraps the data key of document `sha256` under the active key: returns the key id and
    /// `nonce ‖ ciphertext ‖ tag`.
    pub fn wrap(&self, sha256: &str, data_key: &DataKey) -> Result<(String, Vec<u8>), KeyError> {
        let master = self.keys.first().ok_or(KeyError::Unknown(String::new()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("system random generator"))?;
        let mut sealed = data_key.as_bytes().to_vec();
        master
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(context(&master.id, sha256)),
                &mut sealed,
            )
            .map_err(|_| KeyError::Crypto("AES-256-GCM wrap"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok((master.id.clone(), out))
    }

    /// Unwraps the data key of document `sha256` wrapped under master key `id`.
    pub fn unwrap(&self, id: &str, sha256: &str, wrapped: &[u8]) -> Result<DataKey, KeyError> {
        let master = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::Unknown(id.to_string()))?;
        if wrapped.len() != NONCE_LEN + 32 + AES_256_GCM.tag_len() {
            return Err(KeyError::Unwrap(sha256.to_string()));
        }
        let (nonce, sealed) = wrapped.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| KeyError::Unwrap(sha256.to_string()))?;
        let mut sealed = sealed.to_vec();
        let plain = master
            .key
            .open_in_place(nonce, Aad::from(context(id, sha256)), &mut sealed)
            .map_err(|_| KeyError::Unwrap(sha256.to_string()))?;
        let bytes: [u8; 32] = plain
            .try_into()
            .map_err(|_| KeyError::Unwrap(sha256.to_string()))?;
        sealed.fill(0);
        Ok(DataKey::from_bytes(bytes))
    }
}

impl Keyring {
    /// Seals a service secret (`purpose` and `name` say what it is) under the active key:
    /// returns the key id and `nonce ‖ ciphertext ‖ tag`. The purpose, the name and the key id
    /// are bound as associated data, so a sealed value cannot be moved to another slot
    /// (issue 12 §4: the database alone yields no secret).
    pub fn seal_secret(
        &self,
        purpose: &str,
        name: &str,
        plain: &[u8],
    ) -> Result<(String, Vec<u8>), KeyError> {
        let master = self.keys.first().ok_or(KeyError::Unknown(String::new()))?;
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("system random generator"))?;
        let mut sealed = plain.to_vec();
        master
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(secret_context(&master.id, purpose, name)),
                &mut sealed,
            )
            .map_err(|_| KeyError::Crypto("AES-256-GCM seal"))?;
        let mut out = nonce.to_vec();
        out.extend(sealed);
        Ok((master.id.clone(), out))
    }

    /// Opens a secret sealed by [`Keyring::seal_secret`] under master key `id`.
    pub fn open_secret(
        &self,
        id: &str,
        purpose: &str,
        name: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>, KeyError> {
        let master = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| KeyError::Unknown(id.to_string()))?;
        let refused = || KeyError::Unwrap(format!("{purpose} {name}"));
        if sealed.len() < NONCE_LEN + AES_256_GCM.tag_len() {
            return Err(refused());
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| refused())?;
        let mut body = body.to_vec();
        let plain = master
            .key
            .open_in_place(
                nonce,
                Aad::from(secret_context(id, purpose, name)),
                &mut body,
            )
            .map_err(|_| refused())?
            .to_vec();
        body.fill(0);
        Ok(plain)
    }
}

/// Domain separation of sealed service secrets (distinct from document data keys).
const SECRET_CONTEXT: &[u8] = b"recommande service secret v1";

fn secret_context(id: &str, purpose: &str, name: &str) -> Vec<u8> {
    let mut aad = SECRET_CONTEXT.to_vec();
    for part in [id, purpose, name] {
        aad.push(0);
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

fn context(id: &str, sha256: &str) -> Vec<u8> {
    let mut aad = WRAP_CONTEXT.to_vec();
    aad.push(0);
    aad.extend_from_slice(id.as_bytes());
    aad.push(0);
    aad.extend_from_slice(sha256.to_ascii_lowercase().as_bytes());
    aad
}

/// Formats a master key line from its id and raw bytes.
pub fn format_key(id: &str, bytes: &[u8; 32]) -> String {
    format!(
        "{id}:{}\n",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// A new random master key line with the given id (`recommande archive new-key`, tests).
pub fn generate_key(id: &str) -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| KeyError::Crypto("system random generator"))?;
    let line = format_key(id, &bytes);
    bytes.fill(0);
    // Refuses an id the loader would refuse.
    parse_key(&line, "the new key")?;
    Ok(line)
}

fn parse_key(text: &str, origin: &str) -> Result<MasterKey, KeyError> {
    let malformed = |reason: &str| KeyError::Malformed {
        origin: origin.to_string(),
        reason: reason.to_string(),
    };
    let (id, encoded) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| malformed("expected <id>:<base64 of 32 bytes>"))?;
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(malformed(
            "the id must be 1 to 64 letters, digits, '-', '_' or '.'",
        ));
    }
    let mut bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed("the key is not base64"))?;
    if bytes.len() != 32 {
        return Err(malformed("the key must be 32 bytes (AES-256)"));
    }
    let key = UnboundKey::new(&AES_256_GCM, &bytes)
        .map(LessSafeKey::new)
        .map_err(|_| KeyError::Crypto("AES-256-GCM key"));
    bytes.fill(0);
    Ok(MasterKey {
        id: id.to_string(),
        key: key?,
    })
}

fn write_development_key(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        crate::infra::private_files::create_dir(dir).map_err(io)?;
    }
    let id = format!("dev-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let line = generate_key(&id)?;
    let mut file = crate::infra::private_files::file_options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    std::io::Write::write_all(&mut file, line.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_in_its_own_slot_and_under_its_own_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ring = Keyring::load(None, &[], dir.path()).expect("load");
        let (id, sealed) = ring.seal_secret("service", "a", b"material").expect("seal");
        assert_eq!(
            ring.open_secret(&id, "service", "a", &sealed)
                .expect("open"),
            b"material"
        );
        assert!(ring.open_secret(&id, "service", "b", &sealed).is_err());
        assert!(ring.open_secret(&id, "webhook", "a", &sealed).is_err());
        assert!(ring.open_secret("other", "service", "a", &sealed).is_err());
        assert!(!sealed.windows(8).any(|w| w == b"material"));
    }

    #[test]
    fn a_wrapped_key_opens_only_for_its_document_and_master_key() {
        let dir = tempfile::tempdir().expect("dir");
        let a = dir.path().join("a.key");
        let b = dir.path().join("b.key");
        std::fs::write(&a, generate_key("a").expect("key")).expect("write");
        std::fs::write(&b, generate_key("b").expect("key")).expect("write");
        let ring = Keyring::load(None, &[a.clone(), b.clone()], dir.path()).expect("load");
        assert_eq!(ring.active_id(), "a");
        let data = DataKey::generate().expect("data key");
        let (id, wrapped) = ring.wrap("ab12", &data).expect("wrap");
        assert_eq!(id, "a");
        let back = ring.unwrap("a", "ab12", &wrapped).expect("unwrap");
        assert_eq!(back.as_bytes(), data.as_bytes());
        assert!(matches!(
            ring.unwrap("a", "cd34", &wrapped),
            Err(KeyError::Unwrap(_))
        ));
        assert!(matches!(
            ring.unwrap("b", "ab12", &wrapped),
            Err(KeyError::Unwrap(_))
        ));
        let only_b = Keyring::load(None, &[b], dir.path()).expect("load");
        assert!(matches!(
            only_b.unwrap("a", "ab12", &wrapped),
            Err(KeyError::Unknown(id)) if id == "a"
        ));
    }

    #[test]
    fn the_development_key_is_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("dir");
        let first = Keyring::load(None, &[], dir.path()).expect("load");
        let second = Keyring::load(None, &[], dir.path()).expect("load");
        assert_eq!(first.active_id(), second.active_id());
        assert!(first.active_id().starts_with("dev-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("keys").join(DEVELOPMENT_KEY_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_and_duplicate_keys_are_refused() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(matches!(
            Keyring::load(Some("nokey"), &[], dir.path()),
            Err(KeyError::Malformed { .. })
        ));
        assert!(matches!(
            Keyring::load(Some("k:AAAA"), &[], dir.path()),
            Err(KeyError::Malformed { .. })
        ));
        let a = dir.path().join("a.key");
        let line = generate_key("same").expect("key");
        std::fs::write(&a, &line).expect("write");
        assert!(matches!(
            Keyring::load(Some(&line), &[a], dir.path()),
            Err(KeyError::DuplicateId(id)) if id == "same"
        ));
    }
}
