//! Integration tests through the real router, on SQLite and on PostgreSQL.

mod helpers;

mod bad_input;
mod browser;
mod cli;
mod deposit;
mod lifecycle;
mod pages;
mod production_pki;
mod restart;
mod smtp;
mod tsa;
