//! Benchmarks run by `recommande bench …`. They print figures; they are not tests.

pub mod batch;
pub mod deposit;
pub mod dispatch;
pub mod renew;
pub mod tsa;
pub mod verify;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::app::service::Service;
use crate::config::{Overrides, Settings};
use crate::core::clock::SystemClock;

/// A fresh temporary data directory for one run, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A new, not yet created, directory under the system's temporary folder.
    pub(crate) fn new() -> Self {
        Scratch(std::env::temp_dir().join(format!("recommande-bench-{}", uuid::Uuid::new_v4())))
    }

    /// Where it is.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    /// The service on this directory's defaults and `database_url` (default: SQLite in the
    /// directory).
    pub(crate) async fn service(&self, database_url: Option<String>) -> anyhow::Result<Service> {
        self.service_with(database_url, &[]).await
    }

    /// As [`Scratch::service`], with `RECOMMANDE_*` variables `env` set for it alone.
    pub(crate) async fn service_with(
        &self,
        database_url: Option<String>,
        env: &[(&str, String)],
    ) -> anyhow::Result<Service> {
        let settings = Settings::load_from(
            &Overrides {
                data_dir: Some(self.0.clone()),
                database_url,
                ..Overrides::default()
            },
            |name| {
                env.iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.clone())
            },
        )?;
        Service::start(settings, Arc::new(SystemClock))
            .await
            .context("starting the service")
    }
}

/// Serves `service`'s API on a free loopback port until the returned task is aborted;
/// returns its base URL and the task.
pub(crate) async fn serve_on_loopback(
    service: &Service,
) -> anyhow::Result<(String, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let router = crate::http::router(service.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await;
    });
    Ok((base, server))
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
