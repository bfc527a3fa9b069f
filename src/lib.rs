//! recommande: electronic registered letters (French *lettre recommandée électronique*,
//! eIDAS *electronic registered delivery*) for debt collection, whose every step yields
//! evidence that a judge can verify offline with plain `openssl`.
//!
//! The core — [`evidence`], [`seal`], [`timestamp`], [`trust`], [`verify`], [`asn1`] — takes
//! bytes, keys, trust anchors and a time, and does no I/O. The edges — [`http`], [`storage`],
//! [`content`], the remote TSA client — do. See `docs/ARCHITECTURE.md` for the map.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api_key;
pub mod archive;
pub mod asn1;
pub mod audit;
pub mod batch;
pub mod bench;
pub mod bounce;
pub mod bundle;
pub mod canonical;
pub mod cli;
pub mod clock;
pub mod collection;
pub mod composer;
pub mod config;
pub mod consent;
pub mod content;
pub mod deposit;
pub mod evidence;
pub mod french;
pub mod http;
pub mod identity;
pub mod letter;
pub mod lifecycle;
pub mod log;
pub mod mail;
pub mod net_guard;
pub mod pki;
pub mod private_files;
pub mod proof;
#[cfg(test)]
mod properties;
pub mod renewal;
pub mod seal;
pub mod secrets;
pub mod service;
pub mod storage;
pub mod timestamp;
pub mod trust;
pub mod verify;
pub mod webhook;
pub mod window;
pub mod witness;
pub mod worker;
