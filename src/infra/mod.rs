//! The outside world: the database, the content store, mail, outbound HTTP, the remote TSA
//! and key files. Each module turns I/O into the core's and the domain's types.

pub mod content;
pub mod key_files;
pub mod keys;
pub mod mail;
pub mod net_guard;
pub mod otlp;
pub mod pkcs11;
pub mod private_files;
pub mod process;
pub mod storage;
pub mod timestamping;
pub mod trace;
pub mod tsa_client;
