//! `recommande api-key`: creates, lists and revokes API keys.

use std::process::ExitCode;

use anyhow::Context;

use super::{ApiKeyCommand, Location};
use crate::app::api_key::ApiKeyHasher;
use crate::core::clock::{from_unix_micros, rfc3339_micros, unix_micros};
use crate::infra::storage::Storage;

/// Runs an `api-key` subcommand.
pub(super) async fn run(cmd: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let now = unix_micros(time::OffsetDateTime::now_utc());
    match cmd {
        ApiKeyCommand::Create { tenant, location } => {
            let tenant = tenant.trim();
            anyhow::ensure!(
                !tenant.is_empty() && tenant.len() <= 200 && !tenant.chars().any(char::is_control),
                "--tenant must be a non-empty name of at most 200 characters"
            );
            let settings = location.settings()?;
            let keyring = crate::infra::keys::Keyring::load(
                settings.archive.master_key.as_ref().map(|k| k.expose()),
                &settings.archive.master_key_files,
                &settings.server.data_dir,
            )
            .context("cannot load the master keys that seal the API-key HMAC secret")?;
            let storage = open_storage(&location).await?;
            let hasher = ApiKeyHasher::load(&storage, &keyring, now).await?;
            let (id, key) = hasher.create(&storage, tenant, now).await?;
            tracing::info!(api_key.id = %id, tenant = %tenant, "API key created");
            println!("{key}");
            storage.close().await;
        }
        ApiKeyCommand::List {
            tenant,
            json,
            location,
        } => {
            let storage = open_storage(&location).await?;
            let keys = storage.list_api_keys(tenant.as_deref()).await?;
            storage.close().await;
            let time = |t: i64| rfc3339_micros(from_unix_micros(t));
            if json {
                let rows: Vec<serde_json::Value> = keys
                    .iter()
                    .map(|k| {
                        serde_json::json!({
                            "id": k.id,
                            "tenant": k.tenant_name,
                            "created_at": time(k.created_at),
                            "revoked_at": k.revoked_at.map(time),
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
                return Ok(ExitCode::SUCCESS);
            }
            println!("{:<36}  {:<24}  {:<27}  revoked", "id", "tenant", "created");
            for k in keys {
                println!(
                    "{:<36}  {:<24}  {:<27}  {}",
                    k.id,
                    k.tenant_name,
                    time(k.created_at),
                    k.revoked_at.map(time).unwrap_or_else(|| "-".into())
                );
            }
        }
        ApiKeyCommand::Revoke { id, location } => {
            let storage = open_storage(&location).await?;
            let revoked = storage.revoke_api_key(&id, now).await?;
            storage.close().await;
            if !revoked {
                eprintln!("error: no active API key with id {id}");
                return Ok(ExitCode::FAILURE);
            }
            println!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn open_storage(location: &Location) -> anyhow::Result<Storage> {
    let settings = location.settings()?;
    if settings.database.url.starts_with("sqlite:") {
        crate::infra::private_files::create_dir(&settings.server.data_dir)
            .with_context(|| format!("cannot create {}", settings.server.data_dir.display()))?;
    }
    Storage::connect(&settings.database.url)
        .await
        .context("cannot open the database")
}
