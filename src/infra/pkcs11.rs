//! Keys in a hardware security module, reached through PKCS#11 (OASIS PKCS#11 v2.40 and
//! 3.0): the second back end of [`KeySigner`]. A key is named by an RFC 7512 URI
//! (`pkcs11:token=recommande;object=seal`); it is generated inside the token
//! ([`generate_key`]) and never leaves it: the service hands the token a SHA-256 digest and
//! gets back the signature (`CKM_ECDSA`, PKCS#11 v2.40 §2.3.6).
//!
//! One module is loaded and initialised once per process and shared by every key in it.
//! Signing sessions are pooled per token: a signature takes an idle session (or opens one,
//! up to `[pki.pkcs11] sessions`), so that workers sealing a batch sign in parallel. The
//! user PIN is kept only as a zeroised-on-drop secret, to log in again if the token drops
//! the login; it is never written anywhere.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;

use crate::config::{PinSource, Pkcs11Settings, Pkcs11Uri};
use crate::core::pki::{KeySigner, PkiError, ecdsa_p256_raw_to_der};

/// DER of the named curve prime256v1 / secp256r1 (1.2.840.10045.3.1.7), the `CKA_EC_PARAMS`
/// of a P-256 key.
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

fn token_error(what: &str, e: CkError) -> PkiError {
    let reason = match &e {
        CkError::Pkcs11(RvError::PinIncorrect, _) => {
            "the PIN is wrong (check [pki.pkcs11] pin_file or RECOMMANDE_PKI_PKCS11_PIN)".into()
        }
        CkError::Pkcs11(RvError::PinLocked, _) => {
            "the user PIN is locked after too many wrong attempts; unlock it with the token's security officer".into()
        }
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    };
    PkiError::Token(format!("{what}: {reason}"))
}

/// Loaded modules, by path: `C_Initialize` may run only once per module and process.
fn modules() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static MODULES: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    MODULES.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_module(path: &Path) -> Result<Pkcs11, PkiError> {
    let mut loaded = modules()
        .lock()
        .map_err(|_| PkiError::Token("the module table is poisoned".into()))?;
    if let Some(context) = loaded.get(path) {
        return Ok(context.clone());
    }
    let what = format!("module {}", path.display());
    let context = Pkcs11::new(path).map_err(|e| token_error(&what, e))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(token_error(&what, e)),
    }
    loaded.insert(path.to_path_buf(), context.clone());
    Ok(context)
}

fn read_pin(source: &PinSource) -> Result<AuthPin, PkiError> {
    let text = match source {
        PinSource::Value(secret) => secret.expose().to_string(),
        PinSource::File(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| PkiError::Read {
                path: path.clone(),
                source,
            })?;
            text.trim_end_matches(['\r', '\n']).to_string()
        }
    };
    Ok(AuthPin::from(text))
}

/// A token (one slot of a loaded module), logged in as its user, with a pool of sessions.
pub struct Token {
    context: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    max_sessions: usize,
    pool: Mutex<Pool>,
    returned: Condvar,
}

struct Pool {
    idle: Vec<Session>,
    open: usize,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .field("slot", &self.slot.id())
            .finish_non_exhaustive()
    }
}

impl Token {
    /// Opens the token the URI names (by `token` label, `serial` or `slot-id`) in the
    /// configured module and logs in; a wrong PIN, or no such token, is an error naming the
    /// tokens that exist.
    pub fn open(settings: &Pkcs11Settings, uri: &Pkcs11Uri) -> Result<Arc<Token>, PkiError> {
        let context = load_module(&settings.module)?;
        let slots = context
            .get_slots_with_initialized_token()
            .map_err(|e| token_error("listing slots", e))?;
        let mut seen = Vec::new();
        let mut found = None;
        for slot in slots {
            let info = context
                .get_token_info(slot)
                .map_err(|e| token_error("reading token information", e))?;
            let label = info.label().trim_end().to_string();
            let serial = info.serial_number().trim_end().to_string();
            let matches = uri.token.as_ref().is_none_or(|t| *t == label)
                && uri.serial.as_ref().is_none_or(|s| *s == serial)
                && uri.slot_id.is_none_or(|id| id == slot.id());
            seen.push(format!("{label:?} (slot {}, serial {serial})", slot.id()));
            if matches && found.is_none() {
                found = Some((slot, label));
            }
        }
        let Some((slot, label)) = found else {
            return Err(PkiError::Token(format!(
                "no initialised token matches {uri} in {}; tokens there: {}",
                settings.module.display(),
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            )));
        };
        let token = Token {
            context,
            slot,
            label,
            pin: read_pin(&settings.pin)?,
            max_sessions: settings.sessions.max(1),
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            returned: Condvar::new(),
        };
        // One session opened and logged in now: a wrong PIN refuses the start.
        let session = token.open_session(false)?;
        token.give_back(session, true);
        Ok(Arc::new(token))
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn open_session(&self, read_write: bool) -> Result<Session, PkiError> {
        let what = format!("token {:?}", self.label);
        let session = if read_write {
            self.context.open_rw_session(self.slot)
        } else {
            self.context.open_ro_session(self.slot)
        }
        .map_err(|e| token_error(&what, e))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(e) => Err(token_error(&format!("logging in to {what}"), e)),
        }
    }

    /// Runs `f` on a pooled session: an idle one, a new one while fewer than
    /// `sessions` are open, else the first one given back.
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> Result<T, CkError>,
    ) -> Result<T, PkiError> {
        let session = {
            let mut pool = self
                .pool
                .lock()
                .map_err(|_| PkiError::Token("session pool poisoned".into()))?;
            loop {
                if let Some(session) = pool.idle.pop() {
                    break Some(session);
                }
                if pool.open < self.max_sessions {
                    pool.open += 1;
                    break None;
                }
                pool = self
                    .returned
                    .wait(pool)
                    .map_err(|_| PkiError::Token("session pool poisoned".into()))?;
            }
        };
        let session = match session {
            Some(session) => session,
            None => match self.open_session(false) {
                Ok(session) => session,
                Err(e) => {
                    self.forget_session();
                    return Err(e);
                }
            },
        };
        let result = f(&session);
        // A session the token no longer knows is dropped, not pooled; the next call opens
        // a fresh one (and logs in again).
        let broken = matches!(
            &result,
            Err(CkError::Pkcs11(
                RvError::SessionHandleInvalid
                    | RvError::SessionClosed
                    | RvError::DeviceRemoved
                    | RvError::TokenNotPresent
                    | RvError::UserNotLoggedIn,
                _
            ))
        );
        self.give_back(session, !broken);
        result.map_err(|e| token_error(&format!("token {:?}", self.label), e))
    }

    fn give_back(&self, session: Session, keep: bool) {
        if let Ok(mut pool) = self.pool.lock() {
            if keep {
                pool.idle.push(session);
                pool.open = pool.open.max(pool.idle.len());
            } else {
                pool.open = pool.open.saturating_sub(1);
            }
            self.returned.notify_one();
        }
    }

    fn forget_session(&self) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.open = pool.open.saturating_sub(1);
            self.returned.notify_one();
        }
    }

    /// The ECDSA P-256 key the URI names (`object` label and/or `id`): exactly one private
    /// key, with the public key object beside it (same label/id) giving its point.
    pub fn key(self: &Arc<Self>, uri: &Pkcs11Uri) -> Result<TokenKey, PkiError> {
        let location = format!("{uri}");
        let mut template = Vec::new();
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let find = |class: ObjectClass| {
            let mut t = template.clone();
            t.push(Attribute::Class(class));
            self.with_session(|s| s.find_objects(&t))
        };
        let private = find(ObjectClass::PRIVATE_KEY)?;
        let handle = match private.as_slice() {
            [one] => *one,
            [] => {
                return Err(PkiError::Token(format!(
                    "no private key matches {location} in token {:?} (generate one with `recommande pki token-key`)",
                    self.label
                )));
            }
            more => {
                return Err(PkiError::Token(format!(
                    "{} private keys match {location}; add id= to the URI to name one",
                    more.len()
                )));
            }
        };
        let attributes = self.with_session(|s| {
            s.get_attributes(handle, &[AttributeType::KeyType, AttributeType::EcParams])
        })?;
        let is_p256 = attributes
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::EC))
            && attributes
                .iter()
                .any(|a| matches!(a, Attribute::EcParams(p) if p.as_slice() == P256_PARAMS));
        if !is_p256 {
            return Err(PkiError::Token(format!(
                "{location} is not an ECDSA P-256 key (the service signs with P-256 only)"
            )));
        }
        let public = find(ObjectClass::PUBLIC_KEY)?;
        let [public] = public.as_slice() else {
            return Err(PkiError::Token(format!(
                "{location}: expected one public key object beside the private key, found {}",
                public.len()
            )));
        };
        let point = self
            .with_session(|s| s.get_attributes(*public, &[AttributeType::EcPoint]))?
            .into_iter()
            .find_map(|a| match a {
                Attribute::EcPoint(p) => Some(p),
                _ => None,
            })
            .ok_or_else(|| PkiError::Token(format!("{location}: the public key has no point")))?;
        Ok(TokenKey {
            token: self.clone(),
            handle,
            public_key: uncompressed_point(&point)
                .ok_or_else(|| PkiError::Token(format!("{location}: unexpected EC point")))?,
            location,
        })
    }
}

/// `CKA_EC_POINT` is the DER OCTET STRING of the point (PKCS#11 v2.40 §2.3.3); some modules
/// return the bare point. Either way, the 65-byte uncompressed point.
fn uncompressed_point(value: &[u8]) -> Option<Vec<u8>> {
    match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 && rest[0] == 0x04 => Some(rest.to_vec()),
        [0x04, ..] if value.len() == 65 => Some(value.to_vec()),
        _ => None,
    }
}

/// An ECDSA P-256 private key inside a token.
pub struct TokenKey {
    token: Arc<Token>,
    handle: ObjectHandle,
    public_key: Vec<u8>,
    location: String,
}

impl KeySigner for TokenKey {
    fn public_key(&self) -> &[u8] {
        &self.public_key
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let raw = self
            .token
            .with_session(|s| s.sign(&Mechanism::Ecdsa, self.handle, digest.as_ref()))?;
        ecdsa_p256_raw_to_der(&raw)
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// Opens keys, sharing one [`Token`] (and its login and sessions) between keys of the same
/// token.
#[derive(Default)]
pub struct Keyring {
    tokens: Vec<(Pkcs11Uri, Arc<Token>)>,
}

impl Keyring {
    /// The key the URI names, through the configured module.
    pub fn key(
        &mut self,
        settings: &Pkcs11Settings,
        uri: &Pkcs11Uri,
    ) -> Result<TokenKey, PkiError> {
        let same_token = |known: &Pkcs11Uri| {
            known.token == uri.token && known.serial == uri.serial && known.slot_id == uri.slot_id
        };
        let token = match self.tokens.iter().find(|(known, _)| same_token(known)) {
            Some((_, token)) => token.clone(),
            None => {
                let token = Token::open(settings, uri)?;
                self.tokens.push((uri.clone(), token.clone()));
                token
            }
        };
        token.key(uri)
    }
}

/// Generates an ECDSA P-256 key pair inside the token, labelled (and identified) as the URI
/// says: the private key is sensitive and not extractable, both objects are token objects.
/// Refuses when a key with that label or id already exists. Returns the key.
pub fn generate_key(settings: &Pkcs11Settings, uri: &Pkcs11Uri) -> Result<TokenKey, PkiError> {
    let token = Token::open(settings, uri)?;
    if token.key(uri).is_ok() {
        return Err(PkiError::Token(format!(
            "a key {uri} already exists in token {:?}; choose another object= label",
            token.label
        )));
    }
    let label = uri.object.clone().unwrap_or_default().into_bytes();
    let id = match &uri.id {
        Some(id) => id.clone(),
        None => {
            let digest = ring::digest::digest(&ring::digest::SHA256, &label);
            digest.as_ref()[..8].to_vec()
        }
    };
    let public = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(P256_PARAMS.to_vec()),
        Attribute::Label(label.clone()),
        Attribute::Id(id.clone()),
    ];
    let private = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label),
        Attribute::Id(id),
    ];
    let session = token.open_session(true)?;
    session
        .generate_key_pair(&Mechanism::EccKeyPairGen, &public, &private)
        .map_err(|e| token_error(&format!("generating {uri}"), e))?;
    drop(session);
    token.key(uri)
}

#[cfg(test)]
mod tests {
    use super::uncompressed_point;

    #[test]
    fn ec_points_are_read_wrapped_or_bare() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        let mut wrapped = vec![0x04, 0x41];
        wrapped.extend(&bare);
        assert_eq!(uncompressed_point(&bare).as_deref(), Some(bare.as_slice()));
        assert_eq!(
            uncompressed_point(&wrapped).as_deref(),
            Some(bare.as_slice())
        );
        assert_eq!(uncompressed_point(&[0x04, 0x21, 1, 2]), None);
        assert_eq!(uncompressed_point(&bare[..64]), None);
    }
}
