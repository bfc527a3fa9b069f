//! recommande: electronic registered letters (French *lettre recommandée électronique*,
//! eIDAS *electronic registered delivery*) for debt collection, whose every step yields
//! evidence that a judge can verify offline with plain `openssl`.
//!
//! The crate is layered; a layer uses only the layers above it in this list (checked by
//! `tests/layering` in the unit tests, see `docs/ARCHITECTURE.md`):
//!
//! - [`core`]: the evidence core. No I/O and no async: bytes, keys, trust anchors and a
//!   time in; bytes or verdicts out.
//! - [`domain`]: parsed business types and the legal rules of letters and collection.
//! - [`config`]: settings, read and checked once at start.
//! - [`infra`]: the outside world: storage, content store, mail, the remote TSA, key files.
//! - [`app`]: use cases combining the above: deposit, batches, lifecycle, log, workers.
//! - [`http`]: the API and the pages. [`bench`] and [`cli`]: the `recommande` command.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod core;

pub mod domain;

pub mod config;

pub mod infra;

pub mod app;

pub mod http;

pub mod bench;
pub mod cli;

#[cfg(test)]
mod layering;
#[cfg(test)]
mod properties;
#[cfg(test)]
mod unit_size;
