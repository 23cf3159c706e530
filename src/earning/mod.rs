//! Earning: communities, residents, volunteer service records, earning rules, rosters,
//! corrections and expiry — the domain around the ledger, reusable by the HTTP API, the CLI and
//! later the web pages. Every write that moves points goes through the writer, with the
//! conditions (caps, record state) checked under the ledger lock.

pub mod queues;
pub mod search;
pub mod service;

pub use service::Earning;
