//! Authentication factors. For now: password hashing with argon2id (OWASP parameters) and the
//! length rules of a tenant's password policy. TOTP, passkeys and recovery codes join later.

mod hasher;
mod password;

pub use hasher::{PasswordHasher, Verification};
pub use password::{
    HashParams, PasswordError, Violation, Violations, check_password_policy, hash_password, password_expired,
    verify_password,
};
