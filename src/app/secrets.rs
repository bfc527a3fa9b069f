//! Installation secrets sealed under the master key (issue 12 §4).
//!
//! The HMAC keys of link tokens, one-time codes, recipient sessions and API keys are 256-bit
//! random values generated once per installation. They are kept in the database only sealed
//! (AES-256-GCM) under the master key that already protects documents
//! ([`crate::infra::keys`]): a copy of the database alone cannot recompute a link token, a
//! code's hash or an API key's HMAC, nor search the 10^6 one-time codes offline.
//!
//! Versions before migration 0012 kept these keys in clear in `service_secrets`. The first
//! start of this version seals the *same* bytes and erases the clear copy in one transaction,
//! so every live link, code, session and API key keeps matching.

use ring::rand::SecureRandom;

use crate::infra::keys::{KeyError, Keyring};
use crate::infra::storage::{Storage, StorageError};

/// What sealed installation secrets are, bound into their sealing (associated data).
const PURPOSE: &str = "installation secret";

/// A failure loading an installation secret.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The secret does not open under the configured master keys (wrong or missing key).
    #[error("installation secret: {0}")]
    Key(#[from] KeyError),
}

/// The installation secret `name`: opened from its sealed row, or — on the first start —
/// sealed from its clear copy of an earlier version (the same bytes, so existing hashes still
/// match) or from 32 fresh random bytes.
pub async fn installation_secret(
    storage: &Storage,
    keyring: &Keyring,
    name: &str,
    now: i64,
) -> Result<Vec<u8>, SecretError> {
    if let Some((key_id, sealed)) = storage.sealed_secret(name).await? {
        return Ok(keyring.open_secret(&key_id, PURPOSE, name, &sealed)?);
    }
    let material = match storage.clear_service_secret(name).await? {
        Some(clear) => clear,
        None => random_bytes::<32>().to_vec(),
    };
    let (key_id, sealed) = keyring.seal_secret(PURPOSE, name, &material)?;
    // Another instance starting at the same moment may have stored its own value first: the
    // stored one wins, for everybody.
    let (key_id, sealed) = storage
        .store_sealed_secret(name, &key_id, &sealed, now)
        .await?;
    Ok(keyring.open_secret(&key_id, PURPOSE, name, &sealed)?)
}

/// Re-seals every installation secret, webhook secret and kept notification message (outbox)
/// sealed under an older master key
/// under the active one (`recommande archive rewrap`), so that the older key can be removed;
/// returns how many were re-sealed. The key material is unchanged.
pub async fn reseal_under_active_key(
    storage: &Storage,
    keyring: &Keyring,
) -> Result<u64, SecretError> {
    let mut resealed = 0;
    for (name, key_id, sealed) in storage.sealed_secrets().await? {
        if key_id == keyring.active_id() {
            continue;
        }
        let plain = keyring.open_secret(&key_id, PURPOSE, &name, &sealed)?;
        let (new_id, new_sealed) = keyring.seal_secret(PURPOSE, &name, &plain)?;
        if storage
            .replace_sealed_secret(&name, &key_id, &new_id, &new_sealed)
            .await?
        {
            resealed += 1;
        }
    }
    resealed += storage.reseal_webhook_secrets(keyring).await?;
    resealed += storage.reseal_job_mails(keyring).await?;
    Ok(resealed)
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // ring's SystemRandom reads getrandom(2); it fails only if the kernel has no entropy
    // source at all, in which case no key of this service could be trusted: stop.
    ring::rand::SystemRandom::new()
        .fill(&mut out)
        .expect("the operating system's random number generator failed");
    out
}
