//! Authentication factors: password hashing with argon2id (OWASP parameters) and the tenant's
//! password policy, TOTP (RFC 6238), recovery codes, and the authentication-method bookkeeping
//! (`amr`/`acr`), passkeys (WebAuthn).

pub mod acr;
mod hasher;
pub mod passkey;
mod password;
pub mod recovery;
pub mod totp;

pub use hasher::{PasswordHasher, Verification};
pub use password::{
    HashMemory, HashParams, PasswordError, Violation, Violations, check_password_policy, check_user_password,
    hash_password, password_expired, verify_password, verify_password_with,
};
