use latchkey_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The master key is missing, malformed, unsafe on disk, or not the one the data was sealed with.
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("cryptography failed: {0}")]
    Crypto(String),
    /// A sealed value did not open: tampered, moved to another row, or sealed under another key.
    #[error("encrypted value does not open ({0})")]
    Sealed(String),
    #[error("no signing key {0:?} in this tenant")]
    UnknownKey(String),
    #[error("{0}")]
    Refused(String),
    /// A JWT failed verification; the message is safe to log, not meant for clients.
    #[error("token rejected: {0}")]
    Token(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}
