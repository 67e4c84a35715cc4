//! What can go wrong between dobrobot and Slack. None of it is a refusal: a refusal is the
//! ledger's answer and is shown to the person; these are logged, and the ledger stays the truth.

use thiserror::Error;

use crate::store::StoreError;

#[derive(Debug, Error)]
pub enum SlackError {
    #[error("Slack is not configured: {0}")]
    NotConfigured(&'static str),
    #[error("Slack API {method}: {detail}")]
    Call {
        method: &'static str,
        detail: String,
    },
    #[error("Slack API: {0}")]
    Api(String),
    #[error("the release messages cannot be read or recorded: {0}")]
    Store(#[from] StoreError),
    #[error("a recorded release message cannot be read: {0}")]
    Decode(String),
}
