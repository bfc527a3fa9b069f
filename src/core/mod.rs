//! The evidence core: no I/O and no async. It takes bytes, keys, trust anchors and a time,
//! and returns bytes or verdicts; storage, networks and files are the [`crate::infra`]
//! layer's business.

pub mod asn1;
pub mod bundle;
pub mod canonical;
pub mod cipher;
pub mod clock;
pub mod evidence;
pub mod french;
pub mod log;
pub mod pades;
pub mod pdf_check;
pub mod pki;
pub mod proof;
pub mod provider;
pub mod records;
pub mod renewal;
pub mod revocation;
pub mod seal;
pub mod timestamp;
pub mod trust;
pub mod verify;
