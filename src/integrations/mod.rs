//! Clients for the services reelbase talks to over HTTP: Qdrant, SFTPGo and TMDb.

pub mod qdrant;
pub mod sftpgo;
pub mod tmdb;
pub mod tmdb_people;

use crate::health::Fault;

/// A coarse class for an HTTP client failure. reqwest's own message is never used: it quotes
/// the URL, query string (an API key, for TMDb) included.
pub fn classify(error: &reqwest::Error) -> Fault {
    if error.is_timeout() {
        return Fault::Timeout;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::ConnectionRefused => Fault::Refused,
                std::io::ErrorKind::TimedOut => Fault::Timeout,
                _ => Fault::Unreachable,
            };
        }
        source = cause.source();
    }
    if error.is_connect() {
        Fault::Unreachable
    } else {
        Fault::Protocol
    }
}
