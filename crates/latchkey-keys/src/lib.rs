//! Keys: per-tenant signing key rings (ES256 default, RS256 for ID tokens, EdDSA) with staged
//! rotation (pending → active → retired → removed), JWKS and compact JWS; and envelope encryption
//! at rest (master key → per-tenant data key → AES-256-GCM value bound to its location).

mod alg;
mod envelope;
mod error;
pub mod jwt;
mod master;
mod pairwise;
mod personal;
mod ring;
mod signing;

pub use alg::Alg;
pub use envelope::{Aad, DataKey, MasterKey, SecretKey};
pub use error::KeyError;
pub use master::{
    KEY_COMMAND_TIMEOUT, KeyInput, MASTER_KEY_FILE, MasterKeySource, load_master_key, run_key_command,
    write_key_file,
};
pub use pairwise::PairwiseSalt;
pub use personal::PersonalVault;
pub use ring::{JWKS_MAX_AGE_SECS, KeyRing, KeyState, RingKey, TickReport};
pub use signing::{SigningKey, VerifyingKey, thumbprint};

use base64::Engine as _;

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn unb64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s).ok()
}
