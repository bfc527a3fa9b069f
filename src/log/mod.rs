//! The service-wide transparency log (DESIGN §3, §10): every evidence record's SHA-256 is a
//! leaf of one append-only Merkle tree (RFC 9162), whose signed tree heads let anyone holding
//! an old head check that history was only ever extended — even against someone with
//! database access. [`merkle`] is the pure tree arithmetic.

pub mod merkle;
