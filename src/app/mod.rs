//! Use cases: each combines the core, the domain and the outside world — deposit, batches,
//! the letter lifecycle, composed letters, the transparency log and its witnesses, audit,
//! archive, timestamp renewal, webhooks — and the workers that run them in the background.
//! [`service`] assembles them.

pub mod api_key;
pub mod archive;
pub mod audit;
pub mod batch;
pub mod composer;
pub mod deposit;
pub mod jobs;
pub mod lifecycle;
pub mod log;
pub mod renewal;
pub mod secrets;
pub mod service;
pub mod webhook;
pub mod witness;
pub mod worker;
