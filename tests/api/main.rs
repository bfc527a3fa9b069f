//! Integration tests through the real router, on SQLite and on PostgreSQL.

mod helpers;

mod bad_input;
mod cli;
mod consents;
mod deposit;
mod production_pki;
mod restart;
mod tsa;
mod webhooks;
