//! Helpers shared by the integration tests: the app as `serve` builds it (`app`), the fixtures
//! (`fixtures`), the read API's harness (`read_api`), a temp dir to run the binary in (`site`), `serve` as
//! processes (`serve`), Slack's payloads
//! (`slack`), the receivers of release markers (`sinks`), a fake Jira (`jira`) and the store conformance suite
//! (`conformance`).
//! Each test binary uses a part of them, so the rest is dead code there.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod app;
pub mod conformance;
pub mod fixtures;
pub mod jira;
pub mod read_api;
pub mod serve;
pub mod sinks;
pub mod site;
pub mod slack;
