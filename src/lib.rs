//! dobrobot: a release ledger with a chat front. See the README for the flow of one command.

pub mod answer;
pub mod app;
pub mod bot;
pub mod cli;
pub mod config;
pub mod domain;
pub mod envelope;
pub mod follower;
pub mod http;
pub mod ledger;
pub mod metrics;
pub mod migrate;
pub mod models;
pub mod notices;
pub mod projections;
pub mod read;
pub mod reminders;
pub mod render;
pub mod schemas;
pub mod slack;
pub mod snapshots;
pub mod store;
pub mod telemetry;
pub mod tracker;
pub mod verify;
