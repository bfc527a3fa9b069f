//! `[storage]`: where the (encrypted) document bytes live (docs/CONFIGURATION.md, "Document
//! storage").

use serde::Deserialize;

use super::{ConfigError, SecretText};

/// Where document bytes are stored. Either way they are ciphertext: encryption happens above
/// the back end.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum StorageBackend {
    /// `DATA_DIR/documents/` (embedded default).
    #[default]
    Filesystem,
    /// An S3-compatible bucket.
    S3(S3Settings),
}

/// `[storage.s3]`: an S3-compatible bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (no leading or trailing `/`; may be empty).
    pub prefix: String,
    /// Endpoint URL of a non-AWS service (MinIO, Garage, Ceph…); `None`: AWS for `region`.
    pub endpoint: Option<String>,
    /// Region (signing region for other services).
    pub region: String,
    /// Access key id; `None`: the AWS environment (`AWS_*` variables, instance metadata).
    pub access_key_id: Option<String>,
    /// Secret access key, with `access_key_id`.
    pub secret_access_key: Option<SecretText>,
    /// Allows a plain `http://` endpoint (a local test server only).
    pub allow_http: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileStorage {
    backend: Option<String>,
    s3: Option<FileS3>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileS3 {
    bucket: Option<String>,
    prefix: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
}

/// Checks `[storage]`: the back end, and for S3 the bucket, prefix, endpoint and keys.
pub(super) fn resolve(file: FileStorage) -> Result<StorageBackend, ConfigError> {
    match file.backend.as_deref().unwrap_or("filesystem") {
        "filesystem" | "fs" => Ok(StorageBackend::Filesystem),
        "s3" => {
            let s3 = file.s3.unwrap_or_default();
            let bucket = s3
                .bucket
                .filter(|b| !b.is_empty())
                .ok_or(ConfigError::Invalid {
                    key: "storage.s3.bucket",
                    message: "is required when storage.backend = \"s3\"".into(),
                })?;
            // Bucket names: 3 to 63 lowercase letters, digits, dots and hyphens (AWS rules,
            // which other services follow).
            if !(3..=63).contains(&bucket.len())
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
            {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.bucket",
                    message: format!("{bucket:?} is not a valid bucket name"),
                });
            }
            let prefix = s3.prefix.unwrap_or_default().trim_matches('/').to_string();
            if prefix.split('/').any(|p| p == "." || p == "..")
                || prefix.contains("//")
                || prefix.chars().any(|c| c.is_control())
            {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.prefix",
                    message: format!("{prefix:?} is not a key prefix such as `recommande/prod`"),
                });
            }
            let endpoint = s3.endpoint.filter(|e| !e.is_empty());
            let allow_http = s3.allow_http.unwrap_or(false);
            if let Some(url) = &endpoint {
                let plain = url.starts_with("http://");
                if !(plain || url.starts_with("https://")) {
                    return Err(ConfigError::Invalid {
                        key: "storage.s3.endpoint",
                        message: format!("{url:?} must be an http:// or https:// URL"),
                    });
                }
                if plain && !allow_http {
                    return Err(ConfigError::Invalid {
                        key: "storage.s3.endpoint",
                        message: format!(
                            "{url:?} is plain http: set storage.s3.allow_http = true (a local test server only)"
                        ),
                    });
                }
            }
            let access_key_id = s3.access_key_id.filter(|k| !k.is_empty());
            let secret_access_key = s3
                .secret_access_key
                .filter(|k| !k.is_empty())
                .map(SecretText::new);
            if access_key_id.is_some() != secret_access_key.is_some() {
                return Err(ConfigError::Invalid {
                    key: "storage.s3.secret_access_key",
                    message: "access_key_id and secret_access_key go together (or neither: the AWS environment)".into(),
                });
            }
            Ok(StorageBackend::S3(S3Settings {
                bucket,
                prefix,
                endpoint,
                region: s3
                    .region
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "us-east-1".to_string()),
                access_key_id,
                secret_access_key,
                allow_http,
            }))
        }
        other => Err(ConfigError::Invalid {
            key: "storage.backend",
            message: format!("{other:?} must be \"filesystem\" or \"s3\""),
        }),
    }
}
