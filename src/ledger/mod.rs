//! The ledger rules: pure code with no IO, no clock and no randomness of its own.
//!
//! Amounts, units and account policy, entries and their checks, the hash-chain layout, the batch
//! planner and the verifier. Everything here is deterministic given its inputs, and is tested
//! without a database.

pub mod amount;
pub mod chain;
pub mod checkpoint;
pub mod code;
pub mod entry;
pub mod lots;
pub mod plan;
pub mod presence;
pub mod unit;
pub mod verify;

pub use amount::{format_change, format_minor, Amount, AmountError};
pub use checkpoint::{Checkpoint, Total};
pub use entry::{
    AccountId, EntryDraft, EntryKind, LedgerError, PostedEntry, Posting, Side, GROUP_MAX,
};
pub use plan::{
    head_ahead_micros, plan_batch, BatchPlan, BatchState, Guard, Head, Limit, LimitCode, Planned,
    WriteRequest, HEAD_AHEAD_MAX_MICROS,
};
pub use unit::{AccountKind, Floor, Unit};
