//! aixin: a double-entry ledger of community volunteer points.
//!
//! See `ARCHITECTURE.md` for the map. In short: [`ledger`] holds the rules and does no IO;
//! [`store`] persists them on SQLite or PostgreSQL; [`writer`] batches concurrent writes into
//! group commits; [`session`] signs people in to the web pages; [`http`] and [`cli`] (the
//! `aixin` binary) are thin edges.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod earning;
pub mod error;
pub mod http;
pub mod journal;
pub mod keys;
pub mod ledger;
pub mod model;
pub mod redeem;
pub mod seed;
pub mod session;
pub mod store;
pub mod web;
pub mod writer;
