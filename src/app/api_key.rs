//! API keys: 256-bit random secrets shown once, stored only as HMAC-SHA256 under an
//! installation secret (sealed under the master key, src/app/secrets.rs), looked up by that HMAC and compared in constant time.

use base64::Engine;

use crate::app::secrets::{SecretError, installation_secret, random_bytes};
use crate::infra::keys::Keyring;
use crate::infra::storage::{ApiKeyRow, Storage, StorageError};

/// Prefix of every key, so that leaked keys are easy to recognise in logs and scanners.
pub const KEY_PREFIX: &str = "rk_";
const HMAC_SECRET_NAME: &str = "api_key_hmac_v1";

/// Computes the stored form of keys.
#[derive(Clone)]
pub struct ApiKeyHasher {
    key: ring::hmac::Key,
}

/// The tenant behind a valid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Tenant id.
    pub tenant_id: String,
    /// Tenant name.
    pub tenant_name: String,
    /// Id of the key used.
    pub api_key_id: String,
}

impl ApiKeyHasher {
    /// Loads the installation's HMAC secret (sealed under the master key), creating it on
    /// first use.
    pub async fn load(storage: &Storage, keyring: &Keyring, now: i64) -> Result<Self, SecretError> {
        let secret = installation_secret(storage, keyring, HMAC_SECRET_NAME, now).await?;
        Ok(ApiKeyHasher {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret),
        })
    }

    /// HMAC-SHA256 of a presented key.
    pub fn hmac(&self, presented: &str) -> Vec<u8> {
        ring::hmac::sign(&self.key, presented.as_bytes())
            .as_ref()
            .to_vec()
    }

    /// Creates a key for tenant `tenant_name` (creating the tenant if needed); returns the
    /// stored row and the key, which is never stored and cannot be shown again.
    pub async fn create(
        &self,
        storage: &Storage,
        tenant_name: &str,
        now: i64,
    ) -> Result<(String, String), StorageError> {
        let tenant = storage.ensure_tenant(tenant_name, now).await?;
        let key = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes::<32>())
        );
        let id = uuid::Uuid::now_v7().to_string();
        storage
            .insert_api_key(&id, &tenant.id, &self.hmac(&key), now)
            .await?;
        Ok((id, key))
    }

    /// The caller behind `presented`, or `None` for an unknown or revoked key.
    pub async fn authenticate(
        &self,
        storage: &Storage,
        presented: &str,
    ) -> Result<Option<Caller>, StorageError> {
        if !presented.starts_with(KEY_PREFIX) || presented.len() > 128 {
            return Ok(None);
        }
        let mac = self.hmac(presented);
        let Some(row): Option<ApiKeyRow> = storage.api_key_by_hmac(&mac).await? else {
            return Ok(None);
        };
        // The lookup is by an index on the HMAC; the stored tag is then checked again with
        // ring's constant-time HMAC verification so that no timing depends on its value.
        if ring::hmac::verify(&self.key, presented.as_bytes(), &row.key_hmac).is_err()
            || row.revoked_at.is_some()
        {
            return Ok(None);
        }
        Ok(Some(Caller {
            tenant_id: row.tenant_id,
            tenant_name: row.tenant_name,
            api_key_id: row.id,
        }))
    }
}
