//! The protocol types and server stubs, generated at build time from the `.proto` files inside
//! the `kurrentdb` package (see `build.rs`).

#![allow(dead_code, clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]

include!(concat!(env!("OUT_DIR"), "/esdb_protos.rs"));

pub(crate) use event_store::client as shared;
pub(crate) use event_store::client::{gossip, projections, server_features, streams};
