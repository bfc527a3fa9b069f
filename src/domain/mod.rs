//! Parsed business types and the rules of the law: letters and parties, consent, identity
//! levels, the acceptance window, bounces, batches of letters and debt collection. Pure,
//! like the core it may use.

pub mod batch;
pub mod bounce;
pub mod collection;
pub mod consent;
pub mod identity;
pub mod letter;
pub mod window;
