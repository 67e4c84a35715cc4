//! The JSON Schemas of the ledger, embedded at build time and compiled once.
//!
//! `schemas/<Type>.json` describes the `data` of one event type (the store keeps the type name
//! apart, see `envelope.rs`); `schemas/metadata.json` describes every event's metadata. They are
//! the contract for anyone reading the ledger without this code (EventStoreDB projections, an
//! export), so the files are the source of truth and this module only embeds them: `verify`
//! checks every stored event against them and a test checks every event the code emits.
//!
//! The schemas are draft 2020-12 and self-contained (shared definitions are repeated under each
//! file's `$defs`), so that each file can be read and used on its own. Formats (`date-time`,
//! `uuid`) are asserted, not just annotated.

use std::sync::LazyLock;

use jsonschema::Validator;
use serde_json::Value;
use thiserror::Error;

/// The name of the metadata schema in [`FILES`].
pub const METADATA: &str = "metadata";

/// Every schema file: its name (`schemas/<name>.json`) and its text. One per event type, in the
/// order of `Event::TYPES`, then the metadata.
pub const FILES: [(&str, &str); 17] = [
    (
        "ReleaseRequested",
        include_str!("../schemas/ReleaseRequested.json"),
    ),
    (
        "ReleaseApproved",
        include_str!("../schemas/ReleaseApproved.json"),
    ),
    (
        "ReleaseRejected",
        include_str!("../schemas/ReleaseRejected.json"),
    ),
    (
        "ReleaseCancelled",
        include_str!("../schemas/ReleaseCancelled.json"),
    ),
    ("AdminJoined", include_str!("../schemas/AdminJoined.json")),
    (
        "DeploymentStarted",
        include_str!("../schemas/DeploymentStarted.json"),
    ),
    (
        "DeploymentFinished",
        include_str!("../schemas/DeploymentFinished.json"),
    ),
    (
        "DeploymentRolledBack",
        include_str!("../schemas/DeploymentRolledBack.json"),
    ),
    (
        "FreezeStarted",
        include_str!("../schemas/FreezeStarted.json"),
    ),
    ("FreezeEnded", include_str!("../schemas/FreezeEnded.json")),
    (
        "CommandRefused",
        include_str!("../schemas/CommandRefused.json"),
    ),
    ("ReminderSent", include_str!("../schemas/ReminderSent.json")),
    (
        "DeploymentAlive",
        include_str!("../schemas/DeploymentAlive.json"),
    ),
    (
        "DeploymentAbandoned",
        include_str!("../schemas/DeploymentAbandoned.json"),
    ),
    (
        "TakeoverProposed",
        include_str!("../schemas/TakeoverProposed.json"),
    ),
    (
        "PolicyChanged",
        include_str!("../schemas/PolicyChanged.json"),
    ),
    (METADATA, include_str!("../schemas/metadata.json")),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SchemaError {
    #[error("no schema for event type `{0}`")]
    UnknownType(String),
    /// The first violation found: where in the instance (a JSON pointer, empty for the root) and
    /// what is wrong there.
    #[error("not a valid {schema}: at `{path}`: {message}")]
    Invalid {
        schema: String,
        path: String,
        message: String,
    },
}

/// Checks the `data` of an event of type `event_type` against `schemas/<event_type>.json`.
pub fn validate_event(event_type: &str, data: &Value) -> Result<(), SchemaError> {
    if event_type == METADATA {
        return Err(SchemaError::UnknownType(event_type.to_string()));
    }
    validate(event_type, data)
}

/// Checks an event's metadata against `schemas/metadata.json`.
pub fn validate_metadata(metadata: &Value) -> Result<(), SchemaError> {
    validate(METADATA, metadata)
}

fn validate(name: &str, instance: &Value) -> Result<(), SchemaError> {
    let (schema, validator) = COMPILED
        .iter()
        .find(|(schema, _)| *schema == name)
        .ok_or_else(|| SchemaError::UnknownType(name.to_string()))?;
    validator
        .validate(instance)
        .map_err(|error| SchemaError::Invalid {
            schema: schema.to_string(),
            path: error.instance_path().as_str().to_string(),
            message: error.to_string(),
        })
}

static COMPILED: LazyLock<Vec<(&'static str, Validator)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, text)| {
            (
                *name,
                compile(text).unwrap_or_else(|e| panic!("schemas/{name}.json: {e}")),
            )
        })
        .collect()
});

fn compile(text: &str) -> Result<Validator, String> {
    let schema: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    jsonschema::draft202012::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::Event;

    const TICKET: &str = "PAY-1";
    const SINCE: &str = "2025-03-03T10:00:00Z";

    /// A valid `data` sample of each event type.
    fn samples() -> Vec<(&'static str, Value)> {
        vec![
            (
                "ReleaseRequested",
                json!({"ticket": TICKET, "requester": "U01ABC", "services": ["billing"],
                       "wiki": "https://wiki/x", "comment": "fix & ship", "need_admin": true}),
            ),
            (
                "ReleaseApproved",
                json!({"ticket": TICKET, "approver": "alice"}),
            ),
            (
                "ReleaseRejected",
                json!({"ticket": TICKET, "approver": "alice", "reason": "no notes"}),
            ),
            ("ReleaseCancelled", json!({"ticket": TICKET, "by": "dev"})),
            ("AdminJoined", json!({"ticket": TICKET, "admin": "oleg"})),
            (
                "DeploymentStarted",
                json!({"ticket": TICKET, "by": "dev", "services": ["billing"],
                       "conflict_groups": ["backend-core"]}),
            ),
            ("DeploymentFinished", json!({"ticket": TICKET, "by": "dev"})),
            (
                "DeploymentRolledBack",
                json!({"ticket": TICKET, "by": "dev", "reason": "5xx up"}),
            ),
            (
                "FreezeStarted",
                json!({"by": "alice", "reason": "black friday", "services": null}),
            ),
            ("FreezeEnded", json!({"by": "alice"})),
            (
                "CommandRefused",
                json!({"by": "eve", "command": "dep start", "ticket": TICKET,
                       "refusal": {"kind": "lock_held",
                                   "lock": {"kind": "group", "name": "backend-core"},
                                   "ticket": "API-7", "by": "dev", "since": SINCE}}),
            ),
            (
                "ReminderSent",
                json!({"ticket": TICKET, "kind": "escalation", "by": "dobrobot"}),
            ),
            (
                "DeploymentAlive",
                json!({"ticket": TICKET, "by": "ci-deployer", "within_secs": 360}),
            ),
            (
                "DeploymentAbandoned",
                json!({"ticket": TICKET, "by": "oleg", "reason": "runner gone",
                       "proposed_by": "alice"}),
            ),
            (
                "TakeoverProposed",
                json!({"ticket": TICKET, "by": "alice", "reason": "runner gone",
                       "second": "admin"}),
            ),
            (
                "PolicyChanged",
                json!({"policy": {"approvers": ["alice"], "admins": ["oleg"],
                                  "four_eyes": true, "services_by_project": {"PAY": ["billing"]},
                                  "conflict_groups": [], "checks": [{"check": "wiki_link_required"}],
                                  "tracker": null},
                       "changes": ["the first recorded policy"], "cause": "start",
                       "host": "bot-1", "process": 7, "by": "dobrobot"}),
            ),
        ]
    }

    fn metadata() -> Value {
        json!({
            "actor": {"id": "U01ABC", "name": "Oleg", "source": "slack"},
            "correlation_id": "0193a8f2-7c1e-7a4b-9c2d-1e2f3a4b5c6d",
            "causation_id": null,
            "command": "<@U123> dep start PAY-1",
            "recorded_at": "2025-03-03T10:00:00.123Z",
            "schema_version": 1,
            "app_version": "0.1.0",
            "prev_hash": "0".repeat(64),
            "hash": "ab".repeat(32),
        })
    }

    fn invalid_at(result: Result<(), SchemaError>, at: &str) {
        match result {
            Err(SchemaError::Invalid { path, .. }) => assert_eq!(path, at),
            other => panic!("expected invalid at `{at}`, got {other:?}"),
        }
    }

    #[test]
    fn there_is_one_schema_per_event_type_and_all_compile() {
        let names: Vec<&str> = FILES.iter().map(|(name, _)| *name).collect();
        assert_eq!(names[..Event::TYPES.len()], Event::TYPES);
        assert_eq!(names[Event::TYPES.len()..], [METADATA]);
        assert_eq!(COMPILED.len(), FILES.len());
    }

    #[test]
    fn a_valid_sample_of_each_type_passes() {
        let samples = samples();
        assert_eq!(samples.len(), Event::TYPES.len());
        for (event_type, data) in samples {
            assert_eq!(validate_event(event_type, &data), Ok(()), "{event_type}");
        }
        assert_eq!(validate_metadata(&metadata()), Ok(()));
    }

    #[test]
    fn a_missing_field_fails() {
        for (event_type, data) in samples() {
            let fields: Vec<String> = data.as_object().unwrap().keys().cloned().collect();
            for field in fields {
                let mut broken = data.clone();
                broken.as_object_mut().unwrap().remove(&field);
                invalid_at(validate_event(event_type, &broken), "");
            }
        }
        let mut broken = metadata();
        broken.as_object_mut().unwrap().remove("hash");
        invalid_at(validate_metadata(&broken), "");
    }

    #[test]
    fn an_extra_field_fails() {
        for (event_type, mut data) in samples() {
            data["at"] = json!(SINCE);
            invalid_at(validate_event(event_type, &data), "");
        }
        let mut broken = metadata();
        broken["actor"]["email"] = json!("o@example.com");
        invalid_at(validate_metadata(&broken), "/actor");
    }

    #[test]
    fn a_wrong_type_fails() {
        for (event_type, data) in samples() {
            let fields: Vec<String> = data.as_object().unwrap().keys().cloned().collect();
            for field in fields {
                let mut broken = data.clone();
                broken[&field] = if data[&field].is_number() {
                    json!("42")
                } else {
                    json!(42)
                };
                invalid_at(validate_event(event_type, &broken), &format!("/{field}"));
            }
        }
        let mut broken = metadata();
        broken["schema_version"] = json!("1");
        invalid_at(validate_metadata(&broken), "/schema_version");
    }

    #[test]
    fn values_the_newtypes_would_not_parse_fail() {
        let cases = [
            (
                "ReleaseApproved",
                json!({"ticket": "pay-1", "approver": "alice"}),
                "/ticket",
            ),
            (
                "ReleaseApproved",
                json!({"ticket": "PAY-1", "approver": ""}),
                "/approver",
            ),
            (
                "ReleaseApproved",
                json!({"ticket": "PAY-1", "approver": "a b"}),
                "/approver",
            ),
            ("FreezeEnded", json!({"by": "<@U1>"}), "/by"),
            (
                "ReleaseRejected",
                json!({"ticket": TICKET, "approver": "alice", "reason": " "}),
                "/reason",
            ),
            (
                "ReleaseRequested",
                json!({"ticket": TICKET, "requester": "dev", "services": ["Billing"],
                       "wiki": null, "comment": "", "need_admin": false}),
                "/services/0",
            ),
            (
                "ReleaseRequested",
                json!({"ticket": TICKET, "requester": "dev", "services": ["billing"],
                       "wiki": "ftp://wiki/x", "comment": "", "need_admin": false}),
                "/wiki",
            ),
            (
                "ReleaseRequested",
                json!({"ticket": TICKET, "requester": "dev", "services": [],
                       "wiki": null, "comment": "", "need_admin": false}),
                "/services",
            ),
            (
                "CommandRefused",
                json!({"by": "eve", "command": "deploy", "ticket": null,
                       "refusal": {"kind": "not_frozen"}}),
                "/command",
            ),
            (
                "CommandRefused",
                json!({"by": "eve", "command": "freeze", "ticket": null,
                       "refusal": {"kind": "not_allowed", "role": "owner"}}),
                "/refusal",
            ),
            (
                "CommandRefused",
                json!({"by": "eve", "command": "unfreeze", "ticket": null,
                       "refusal": {"kind": "already_frozen", "by": "alice",
                                   "since": "yesterday"}}),
                "/refusal",
            ),
        ];
        for (event_type, data, at) in cases {
            invalid_at(validate_event(event_type, &data), at);
        }
        assert_eq!(
            validate_event(
                "ReleaseApproved",
                &json!({"ticket": "PAY-1", "approver": "Ольга"})
            ),
            Ok(())
        );
    }

    #[test]
    fn metadata_fields_have_their_formats() {
        let cases = [
            ("correlation_id", json!("not-a-uuid")),
            ("causation_id", json!("also-not")),
            ("recorded_at", json!("2025-03-03T10:00:00Z")),
            ("recorded_at", json!("2025-03-03 10:00:00.000Z")),
            ("prev_hash", json!("0".repeat(63))),
            ("hash", json!("AB".repeat(32))),
            ("schema_version", json!(0)),
        ];
        for (field, value) in cases {
            let mut broken = metadata();
            broken[field] = value;
            invalid_at(validate_metadata(&broken), &format!("/{field}"));
        }
        let mut broken = metadata();
        broken["actor"]["source"] = json!("email");
        invalid_at(validate_metadata(&broken), "/actor/source");
        let mut caused = metadata();
        caused["causation_id"] = json!("0193a8f2-7c1e-7a4b-9c2d-1e2f3a4b5c6e");
        assert_eq!(validate_metadata(&caused), Ok(()));
    }

    #[test]
    fn an_unknown_type_is_named() {
        assert_eq!(
            validate_event("ReleaseExploded", &json!({})),
            Err(SchemaError::UnknownType("ReleaseExploded".to_string()))
        );
        assert_eq!(
            validate_event(METADATA, &metadata()),
            Err(SchemaError::UnknownType(METADATA.to_string()))
        );
    }
}
