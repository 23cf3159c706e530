//! Audit: bundles an auditor verifies offline, signed checkpoints, books for hledger
//! and Beancount. `format` is pure (every line, the signed byte layouts, the books), `verify`
//! checks a bundle from its files alone, and `export` streams one out of the store.

pub mod export;
pub mod format;
pub mod reports;
pub mod service;
pub mod tar;
pub mod verify;

pub use service::Audit;
