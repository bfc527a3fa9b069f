//! Integration tests through the real router, on SQLite and on PostgreSQL.

mod helpers;

mod bad_input;
mod browser;
mod bundle;
mod cli;
mod consents;
mod deposit;
mod lifecycle;
mod pages;
mod process;
mod production_pki;
mod restart;
mod smtp;
mod templates;
mod tsa;
mod webhooks;
