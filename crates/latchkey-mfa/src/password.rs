//! argon2id password hashes as PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$…`).

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use latchkey_core::{PasswordPolicy, Rng};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("password policy: the password needs {0}")]
    Policy(Violations),
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Too many hashes queued: the caller should answer 503 with Retry-After.
    #[error("too many sign-ins at once; try again shortly")]
    Busy,
}

/// One unmet rule of a password policy; pages word it in the reader's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    TooShort {
        min: u32,
        len: usize,
    },
    TooLong {
        max: u32,
    },
    NoLowercase,
    NoUppercase,
    NoDigit,
    NoSymbol,
    /// On the shipped list of common and breached passwords.
    Common,
    /// Repeats, sequences, keyboard walks.
    Guessable,
    ContainsIdentifier,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort { min, len } => write!(f, "at least {min} characters (it has {len})"),
            Self::TooLong { max } => write!(f, "at most {max} characters"),
            Self::NoLowercase => f.write_str("a lowercase letter"),
            Self::NoUppercase => f.write_str("an uppercase letter"),
            Self::NoDigit => f.write_str("a digit"),
            Self::NoSymbol => f.write_str("a symbol"),
            Self::Common => f.write_str("not to be a commonly used or breached password"),
            Self::Guessable => {
                f.write_str("to be harder to guess (avoid repeats, sequences and keyboard patterns)")
            }
            Self::ContainsIdentifier => f.write_str("no part of the username or email"),
        }
    }
}

/// Every unmet rule, in the order the policy lists them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations(pub Vec<Violation>);

impl std::fmt::Display for Violations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, v) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{v}")?;
        }
        Ok(())
    }
}

/// argon2id cost. The default is OWASP's: 19 MiB, 2 passes, 1 lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

fn hasher(p: HashParams) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, None)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// argon2's working memory (19 MiB at the default cost), owned by the caller so a hashing
/// thread reuses one buffer: allocating it per hash made glibc's heap grow to hundreds of MiB
/// under a burst of sign-ins (an aligned 19 MiB request never fits the hole the last one left).
#[derive(Default)]
pub struct HashMemory(Vec<Block>);

/// glibc gives an allocation above 32 MiB (its highest mmap threshold) a mapping of its own and
/// unmaps it on free. Smaller large ones go to mmap only until the first is freed; after that
/// they come from a heap, where each released 19 MiB buffer left a hole that stayed resident
/// (the peak grew by about 20 MiB per burst of sign-ins an idle minute apart). Reserving this
/// many blocks keeps the buffer in its own mapping; only the blocks argon2 uses are touched, so
/// the resident size is the same.
const OWN_MAPPING_BLOCKS: usize = (32 << 20) / size_of::<Block>() + 1;

impl HashMemory {
    fn blocks(&mut self, argon: &Argon2<'_>) -> &mut [Block] {
        let n = argon.params().block_count();
        if self.0.len() != n {
            if self.0.capacity() < n {
                self.0 = Vec::with_capacity(n.max(OWN_MAPPING_BLOCKS));
            }
            self.0.resize(n, Block::default());
        }
        &mut self.0
    }
}

pub fn hash_password(password: &str, params: HashParams, rng: &dyn Rng) -> Result<String, PasswordError> {
    hash_password_with(password, params, rng, &mut HashMemory::default())
}

pub fn hash_password_with(
    password: &str,
    params: HashParams,
    rng: &dyn Rng,
    memory: &mut HashMemory,
) -> Result<String, PasswordError> {
    let err = |e: &dyn std::fmt::Display| PasswordError::Hash(e.to_string());
    let mut raw = [0u8; 16];
    rng.fill(&mut raw);
    let salt = SaltString::encode_b64(&raw).map_err(|e| err(&e))?;
    let argon = hasher(params)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon
        .hash_password_into_with_memory(password.as_bytes(), &raw, &mut out, memory.blocks(&argon))
        .map_err(|e| err(&e))?;
    Ok(PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(|e| err(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| err(&e))?),
    }
    .to_string())
}

/// Constant-time check of `password` against a stored PHC string; a malformed hash is `false`.
pub fn verify_password(password: &str, phc: &str) -> bool {
    verify_password_with(password, phc, &mut HashMemory::default())
}

pub fn verify_password_with(password: &str, phc: &str, memory: &mut HashMemory) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(h.algorithm), Params::try_from(&h)) else {
        return false;
    };
    let Ok(version) = h.version.map(Version::try_from).transpose() else {
        return false;
    };
    let version = version.unwrap_or_default();
    let argon = Argon2::new(algorithm, version, params);
    let mut raw = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut raw) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    if argon
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, memory.blocks(&argon))
        .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|o| o == expected)
}

/// A user's new password under the tenant's policy, as every administrator's path checks it
/// (the CLI's `user create`/`set-password`, the admin API): the policy's rules with the user's
/// username and email as the identifiers it must not contain.
///
/// # Errors
/// `PasswordError::Policy` with every unmet rule.
pub fn check_user_password(
    password: &str,
    policy: &PasswordPolicy,
    username: &str,
    email: Option<&str>,
) -> Result<(), PasswordError> {
    let identifiers: Vec<&str> = std::iter::once(username).chain(email).collect();
    check_password_policy(password, policy, &identifiers)
}

/// The policy rules that need no context beyond the password and the user's names.
pub fn check_password_policy(
    password: &str,
    policy: &PasswordPolicy,
    identifiers: &[&str],
) -> Result<(), PasswordError> {
    let len = password.chars().count();
    let mut missing = Vec::new();
    if len < policy.min_length as usize {
        missing.push(Violation::TooShort {
            min: policy.min_length,
            len,
        });
    }
    if len > policy.max_length as usize {
        missing.push(Violation::TooLong {
            max: policy.max_length,
        });
    }
    let has = |f: fn(char) -> bool| password.chars().any(f);
    if policy.require_lowercase && !has(char::is_lowercase) {
        missing.push(Violation::NoLowercase);
    }
    if policy.require_uppercase && !has(char::is_uppercase) {
        missing.push(Violation::NoUppercase);
    }
    if policy.require_digit && !has(|c| c.is_ascii_digit()) {
        missing.push(Violation::NoDigit);
    }
    if policy.require_symbol && !has(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
        missing.push(Violation::NoSymbol);
    }
    missing.extend(guessability(password, identifiers));
    let lower = password.to_lowercase();
    for id in identifiers.iter().filter(|i| i.len() >= 3) {
        let local = id.split('@').next().unwrap_or(id).to_lowercase();
        if local.len() >= 3 && lower.contains(&local) {
            missing.push(Violation::ContainsIdentifier);
            break;
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(PasswordError::Policy(Violations(missing)))
    }
}

/// Common and breached passwords (zxcvbn's list of ~30,000, with l33t and reversed variants) and
/// trivially guessable ones (repeats, sequences, keyboard walks) are refused, as NIST SP 800-63B
/// §5.1.1.2 asks. The list ships inside Latchkey; nothing is looked up over the network.
fn guessability(password: &str, identifiers: &[&str]) -> Option<Violation> {
    let entropy = zxcvbn::zxcvbn(password, identifiers);
    let whole_common = entropy.sequence().iter().any(|m| {
        matches!(&m.pattern, zxcvbn::matching::patterns::MatchPattern::Dictionary(d)
            if format!("{:?}", d.dictionary_name) == "Passwords")
            && m.i == 0
            && m.j + 1 >= password.chars().count()
    });
    if whole_common {
        Some(Violation::Common)
    } else if (entropy.score() as u8) < 2 {
        Some(Violation::Guessable)
    } else {
        None
    }
}

/// Whether a password changed at `changed_at` has expired under the policy.
pub fn password_expired(policy: &PasswordPolicy, changed_at: Option<i64>, now: i64) -> bool {
    match (policy.expiry_days, changed_at) {
        (Some(days), Some(at)) => now >= at + i64::from(days) * 86_400_000,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::OsRng;

    const FAST: HashParams = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[test]
    fn hash_verifies_and_wrong_password_fails() {
        let h = hash_password("correct horse battery", FAST, &OsRng).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("correct horse batterY", &h));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn the_working_memory_is_reserved_above_the_mmap_threshold_and_reused() {
        let mut memory = HashMemory::default();
        let argon = hasher(HashParams::default()).unwrap();
        let n = memory.blocks(&argon).len();
        assert_eq!(n, 19456, "19 MiB of 1 KiB blocks at the OWASP cost");
        assert!(memory.0.capacity() * size_of::<Block>() > 32 << 20);
        let at = memory.0.as_ptr();
        assert_eq!(memory.blocks(&hasher(FAST).unwrap()).len(), 1024);
        assert_eq!(memory.blocks(&argon).len(), n);
        assert_eq!(memory.0.as_ptr(), at, "a smaller or equal cost reuses the buffer");
    }

    /// Hashes made here verify with the argon2 crate's own verifier and the other way round,
    /// with one working memory reused across different costs (and an argon2i hash).
    #[test]
    fn reused_memory_matches_the_argon2_crate_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let mut memory = HashMemory::default();
        let ours = hash_password_with("correct horse battery", FAST, &OsRng, &mut memory).unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(Argon2::default().verify_password(b"wrong", &parsed).is_err());
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        for (alg, m) in [
            (Algorithm::Argon2id, 2048),
            (Algorithm::Argon2i, 1024),
            (Algorithm::Argon2id, 4096),
        ] {
            let theirs = Argon2::new(alg, Version::V0x13, Params::new(m, 1, 1, None).unwrap())
                .hash_password(b"tulip-gravel-orbit-42", &salt)
                .unwrap()
                .to_string();
            assert!(
                verify_password_with("tulip-gravel-orbit-42", &theirs, &mut memory),
                "{theirs}"
            );
            assert!(
                !verify_password_with("tulip-gravel-orbit-43", &theirs, &mut memory),
                "{theirs}"
            );
        }
        // A tampered output or salt is a mismatch, a truncated string no hash at all.
        let flipped = format!("{}A", &ours[..ours.len() - 1]);
        let flipped = if flipped == ours {
            format!("{}B", &ours[..ours.len() - 1])
        } else {
            flipped
        };
        assert!(!verify_password_with(
            "correct horse battery",
            &flipped,
            &mut memory
        ));
        assert!(!verify_password_with(
            "correct horse battery",
            &ours[..ours.len() - 10],
            &mut memory
        ));
        assert!(!verify_password_with(
            "correct horse battery",
            "$argon2id$v=99$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            &mut memory
        ));
    }

    #[test]
    fn default_params_are_owasp() {
        let h = hash_password("correct horse battery", HashParams::default(), &OsRng).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }

    #[test]
    fn common_and_guessable_passwords_are_refused() {
        let p = PasswordPolicy::default();
        for weak in [
            "password1234",
            "P@ssw0rd1234",
            "qwertyuiopas",
            "aaaaaaaaaaaa",
            "123456789012",
            "iloveyou1234",
        ] {
            let e = check_password_policy(weak, &p, &[]).unwrap_err().to_string();
            assert!(
                e.contains("commonly used") || e.contains("harder to guess"),
                "{weak}: {e}"
            );
        }
        assert!(check_password_policy("tulip-gravel-orbit-42", &p, &[]).is_ok());
    }

    #[test]
    fn expiry_follows_the_policy() {
        let mut p = PasswordPolicy::default();
        assert!(!password_expired(&p, Some(0), i64::MAX / 2));
        p.expiry_days = Some(90);
        assert!(!password_expired(&p, Some(0), 90 * 86_400_000 - 1));
        assert!(password_expired(&p, Some(0), 90 * 86_400_000));
        assert!(password_expired(&p, None, 0), "never set counts as expired");
    }

    #[test]
    fn policy_names_what_is_missing() {
        let mut p = PasswordPolicy::default();
        let e = check_password_policy("short", &p, &[]).unwrap_err().to_string();
        assert!(
            e.starts_with("password policy: the password needs at least 12 characters (it has 5)"),
            "{e}"
        );
        p.require_digit = true;
        p.require_uppercase = true;
        let e = check_password_policy("alllowercaseletters", &p, &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("an uppercase letter") && e.contains("a digit"), "{e}");
        assert!(check_password_policy("Alllowercase1etters", &p, &[]).is_ok());
        let e = check_password_policy("Alice-Secret-2026", &p, &["alice@example.com"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("username"), "{e}");
    }
}
