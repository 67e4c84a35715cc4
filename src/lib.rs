//! dobrobot: a release ledger with a chat front. See the README for the flow of one command.

pub mod domain;
pub mod store;
pub mod envelope;
pub mod ledger;
pub mod projections;
pub mod config;
pub mod reply;
pub mod bot;
pub mod verify;
pub mod cli;
pub mod telemetry;
pub mod schemas;
