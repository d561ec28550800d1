//! What can go wrong with a vector store, said the same way by every backend.

use crate::health::Fault;

#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("collection {0} does not exist")]
    MissingCollection(String),
    #[error("collection {collection} holds {expected}-dimensional vectors, not {got}")]
    WrongDimension {
        collection: String,
        expected: usize,
        got: usize,
    },
    /// `ensure_collection` found the collection already there with another size or distance;
    /// it is never silently recreated, as that would throw its points away.
    #[error("collection {collection} exists with {existing}, not {wanted}")]
    Mismatch {
        collection: String,
        existing: String,
        wanted: String,
    },
    #[error("collection names are 1 to 40 characters of a-z, 0-9 and _, starting with a letter")]
    BadName(String),
    /// The store refused the request as malformed (Qdrant's own reason, which holds no secret).
    #[error("the vector store refused the request: {0}")]
    Rejected(String),
    /// Qdrant could not be reached or answered out of protocol.
    #[error("the vector store is unavailable ({})", .0.as_str())]
    Unavailable(Fault),
    #[error("database error in the vector store: {0}")]
    Database(#[from] sqlx::Error),
}

impl VectorError {
    /// True when the request itself was wrong (a 4xx to an API caller), false when the store
    /// failed.
    pub fn is_caller_fault(&self) -> bool {
        matches!(
            self,
            VectorError::MissingCollection(_)
                | VectorError::WrongDimension { .. }
                | VectorError::BadName(_)
                | VectorError::Rejected(_)
        )
    }
}
