//! Benchmarks run by `recommande bench …`. They print figures; they are not tests.

pub mod batch;
pub mod deposit;
pub mod renew;
pub mod tsa;
pub mod verify;
