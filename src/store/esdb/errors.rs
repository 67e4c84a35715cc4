//! Client errors mapped onto the port's: what is `Unavailable` (and rebuilds the client), what
//! is a refusal of access, and what is tried again (a not-leader answer).

use super::Shared;
use crate::store::StoreError;

/// Why one try of a call failed.
pub(super) enum Fail {
    Store(StoreError),
    /// The node is not the leader; the client is already reconnecting to the one it named.
    NotLeader(String),
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

impl Shared {
    /// Maps a client error; rebuilds the client after connection-class errors.
    pub(super) fn fail(&self, generation: u64, error: kurrentdb::Error) -> Fail {
        use kurrentdb::Error as E;
        match error {
            E::NotLeaderException(leader) => {
                Fail::NotLeader(format!("{}:{}", leader.host, leader.port))
            }
            E::ConnectionClosed
            | E::GrpcConnectionError(_)
            | E::ServerError(_)
            | E::DeadlineExceeded => {
                self.reconnect(generation);
                Fail::Store(StoreError::Unavailable(format!(
                    "EventStoreDB at {} cannot be reached: {}",
                    self.url,
                    reason(&error)
                )))
            }
            E::AccessDenied => Fail::Store(StoreError::Backend(format!(
                "EventStoreDB at {} refused access: check the credentials in the store URL",
                self.url
            ))),
            other => Fail::Store(StoreError::Backend(format!(
                "EventStoreDB at {}: {other}",
                self.url
            ))),
        }
    }
}

/// What went wrong, in a few words: the gRPC status message when the error carries one (its
/// full rendering lists headers and details nobody reading a reply needs).
fn reason(error: &kurrentdb::Error) -> String {
    let text = error.to_string();
    text.split_once("message: \"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map_or(text.clone(), |(message, _)| message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_keeps_the_status_message_only() {
        let refused = kurrentdb::Error::ServerError(
            r#"status: Unknown, message: "client error (Connect)", details: [], metadata: MetadataMap { headers: {} }"#
                .to_string(),
        );
        assert_eq!(reason(&refused), "client error (Connect)");
        assert_eq!(
            reason(&kurrentdb::Error::ConnectionClosed),
            "Connection is closed."
        );
    }
}
