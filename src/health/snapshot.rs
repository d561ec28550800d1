//! What the background monitor knows: one status per service and when it was measured.
//! Snapshots are immutable and shared through an `Arc`, so readers never wait on a check.

use std::time::Instant;

use serde::Serialize;

use crate::db::migrations::SchemaStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Degraded,
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Error => "error",
        }
    }
}

/// A coarse class for why a service is not `ok`. Deliberately vague: never a driver message,
/// a host name or anything that could carry a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// No answer within the check timeout (includes hosts that drop packets or never reply).
    Timeout,
    /// The connection was refused: nothing listens there.
    Refused,
    /// The service answered but refused our credentials.
    Auth,
    /// PostgreSQL answered but the configured database does not exist.
    MissingDatabase,
    /// A network failure other than refusal (unreachable host, reset, name lookup).
    Unreachable,
    /// Answered correctly, but slower than the configured threshold.
    Slow,
    /// Qdrant answered, but a collection reelbase stores vectors in does not exist.
    MissingCollection,
    /// Qdrant answered, but a collection has another vector size or distance than reelbase
    /// stores in it.
    CollectionMismatch,
    /// Answered with something we did not expect.
    Protocol,
}

impl Fault {
    pub fn as_str(self) -> &'static str {
        match self {
            Fault::Timeout => "timeout",
            Fault::Refused => "refused",
            Fault::Auth => "auth",
            Fault::MissingDatabase => "missing_database",
            Fault::Unreachable => "unreachable",
            Fault::Slow => "slow",
            Fault::MissingCollection => "missing_collection",
            Fault::CollectionMismatch => "collection_mismatch",
            Fault::Protocol => "protocol",
        }
    }
}

/// The outcome of one check of one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ServiceHealth {
    pub status: Status,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Fault>,
}

/// The latest round of checks.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub services: Vec<(&'static str, ServiceHealth)>,
    /// When the round finished (monotonic), for the snapshot's age in `/metrics`.
    pub taken_instant: Instant,
    /// Rounds completed since start; the first snapshot is round 1.
    pub round: u64,
    /// Migration state, when PostgreSQL answered.
    pub schema: Option<SchemaStatus>,
}

impl Snapshot {
    /// `ok` when every service is `ok`, else `degraded`: the server itself still answers.
    pub fn overall(&self) -> Status {
        if self
            .services
            .iter()
            .all(|(_, health)| health.status == Status::Ok)
        {
            Status::Ok
        } else {
            Status::Degraded
        }
    }

    pub fn service(&self, name: &str) -> Option<&ServiceHealth> {
        self.services
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, health)| health)
    }

    /// Ready to take work: the services every request path needs are `ok` and the schema is
    /// current.
    pub fn is_ready(&self) -> bool {
        let services_ok = ["postgres", "redis"]
            .iter()
            .all(|name| self.service(name).is_some_and(|h| h.status == Status::Ok));
        services_ok && self.schema.as_ref().is_some_and(|schema| schema.ok)
    }
}
