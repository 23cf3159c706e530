//! Redemption at love shops: codes, baskets, receipts, refunds and settlement.
//!
//! [`receipt`] is a pure byte format (the code derivation is a ledger rule:
//! [`crate::ledger::code`]); [`service`] is the domain edge that the HTTP
//! handlers and the CLI call.

pub mod owner;
pub mod receipt;
pub mod service;

pub use service::Redemption;

/// Longest item code (SKU), in bytes.
pub const SKU_MAX_BYTES: usize = 12;
/// Longest unit name (袋, 桶, 公斤), in bytes.
pub const UNIT_MAX_BYTES: usize = 9;
