//! Integration tests through the real router, on SQLite and on PostgreSQL.

mod helpers;

mod archive;
mod audit;
mod bad_input;
mod batches;
mod browser;
mod bundle;
mod cli;
mod compose;
mod consents;
mod container;
mod deposit;
mod full_disk;
mod golden;
mod instances;
mod lifecycle;
mod log;
mod metrics;
mod outage;
mod pages;
mod process;
mod production_pki;
mod proofs;
mod renewal;
mod restart;
mod retention;
mod s3;
mod secrets;
mod slow_clients;
mod smtp;
mod templates;
mod tsa;
mod verification;
mod webhooks;
mod witnesses;
