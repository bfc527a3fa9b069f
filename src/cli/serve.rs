//! `recommande serve`: the service (HTTP API, TSA endpoint) on its listen address.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::app::service::Service;
use crate::config::Settings;
use crate::core::clock::SystemClock;

/// Runs the service until the HTTP server stops.
pub(super) async fn run(settings: Settings) -> anyhow::Result<ExitCode> {
    let listen = settings.server.listen;
    let service = Service::start(settings, Arc::new(SystemClock))
        .await
        .context("the service refused to start")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(
        listen = %listen,
        database = service.storage.engine(),
        public_url = %service.settings.server.public_url,
        "recommande is serving"
    );
    crate::http::serve(service, listener)
        .await
        .context("HTTP server failed")?;
    Ok(ExitCode::SUCCESS)
}
