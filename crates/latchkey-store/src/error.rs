use diesel::result::{DatabaseErrorKind, Error as DieselError};
use latchkey_core::ValidationError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database can't be reached or refused the connection; callers answer 503.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The database is known to be down (its circuit breaker is open): answered at once, 503.
    #[error("database is down (circuit open)")]
    CircuitOpen,
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A uniqueness rule was hit (duplicate slug, username, email, role name).
    #[error("{0}")]
    Conflict(String),
    /// The object changed since the caller read it (an `If-Match` that no longer matches, or
    /// a concurrent update won): nothing was written; read it again and retry.
    #[error("{0}")]
    Stale(String),
    /// A group nesting that would make a group its own member, directly or through others.
    #[error("{0}")]
    Cycle(String),
    /// A reference to a row that does not exist in this tenant.
    #[error("{0}")]
    BadReference(String),
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("database URL: {0}")]
    BadUrl(String),
    #[error("running migrations failed: {0}")]
    Migration(String),
    /// Stored data could not be decoded (hand-edited JSON, unknown enum value).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A transient conflict between concurrent transactions (PostgreSQL's serialization
    /// failure or deadlock): the write is retried a bounded number of times, then answered 503.
    #[error("database contention: {0}")]
    Contention(String),
    /// The work took longer than its caller's deadline and was rolled back (nothing written).
    #[error("database deadline passed: {0}")]
    DeadlinePassed(String),
    #[error("database error: {0}")]
    Database(String),
    /// Personal data could not be sealed or opened: no key ring, or the user's key is gone
    /// (erased, or a backup restored without the key vault).
    #[error("personal data: {0}")]
    Sealed(String),
}

impl StoreError {
    pub fn corrupt(what: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(what.to_string())
    }
}

impl From<DieselError> for StoreError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                StoreError::Conflict(format!("already exists ({})", info.message()))
            }
            DieselError::DatabaseError(DatabaseErrorKind::ForeignKeyViolation, info) => {
                StoreError::BadReference(format!(
                    "refers to something that does not exist in this tenant ({})",
                    info.message()
                ))
            }
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, info) => {
                StoreError::Contention(info.message().to_owned())
            }
            // diesel has no kind for SQLSTATE 40P01; PostgreSQL's message is fixed text.
            DieselError::DatabaseError(_, info) if info.message().starts_with("deadlock detected") => {
                StoreError::Contention(info.message().to_owned())
            }
            DieselError::NotFound => StoreError::NotFound { what: "row" },
            DieselError::BrokenTransactionManager => StoreError::Unavailable("broken connection".into()),
            other => StoreError::Database(other.to_string()),
        }
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
