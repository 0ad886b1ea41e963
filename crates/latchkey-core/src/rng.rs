//! Randomness is a parameter: ids, secrets and tokens come from an `Rng`.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::Mutex;

pub trait Rng: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

/// Bytes of OS randomness each thread draws at once: a token or id costs a copy, not a
/// `getrandom` system call (one per request showed in the token endpoint's profile).
const POOL: usize = 512;

thread_local! {
    /// Unused OS random bytes from `POOL_AT` on; handed out once each and wiped as they go.
    static POOL_BYTES: std::cell::RefCell<([u8; POOL], usize)> = const {
        std::cell::RefCell::new(([0; POOL], POOL))
    };
}

fn os_fill(buf: &mut [u8]) {
    // The OS generator failing is unrecoverable: no secret may be made from anything else.
    getrandom::fill(buf).expect("the operating system random number generator failed");
}

impl Rng for OsRng {
    fn fill(&self, buf: &mut [u8]) {
        if buf.len() > POOL / 4 {
            return os_fill(buf);
        }
        POOL_BYTES.with_borrow_mut(|(pool, at)| {
            if *at + buf.len() > POOL {
                os_fill(pool);
                *at = 0;
            }
            let taken = &mut pool[*at..*at + buf.len()];
            buf.copy_from_slice(taken);
            taken.fill(0);
            *at += buf.len();
        });
    }
}

/// A deterministic generator for tests (xorshift; not for secrets).
#[derive(Debug)]
pub struct SeededRng(Mutex<u64>);

impl SeededRng {
    pub fn new(seed: u64) -> Self {
        Self(Mutex::new(seed.max(1)))
    }
}

impl Rng for SeededRng {
    fn fill(&self, buf: &mut [u8]) {
        let mut s = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for b in buf {
            *s ^= *s << 13;
            *s ^= *s >> 7;
            *s ^= *s << 17;
            *b = (*s >> 24) as u8;
        }
    }
}

/// A random (version 4) UUID in its hyphenated lowercase form.
pub fn random_uuid(rng: &dyn Rng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// `bytes` random bytes as unpadded base64url: secrets, session ids, codes.
pub fn random_token(rng: &dyn Rng, bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rng.fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Lowercase hex SHA-256; how high-entropy secrets (client secrets, codes, refresh tokens) are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// The `sid` claim of a browser session (OIDC Front-/Back-Channel Logout §2): derived from the
/// session store's key, so it names the session without being a credential.
pub fn sid_of(session_key: &str) -> String {
    sha256_hex(format!("latchkey-sid-v1:{session_key}").as_bytes())[..32].to_owned()
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Draws from the per-thread pool never repeat, across refills and large requests.
    #[test]
    fn pooled_draws_are_distinct_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for i in 0..200 {
            let mut b = [0u8; 16];
            OsRng.fill(&mut b);
            assert!(seen.insert(b), "draw {i} repeated");
            assert_ne!(b, [0u8; 16]);
        }
        let mut big = [0u8; 300];
        OsRng.fill(&mut big);
        assert!(big.iter().any(|b| *b != 0));
    }

    #[test]
    fn uuid_has_version_4_and_rfc_variant() {
        let id = random_uuid(&OsRng);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, random_uuid(&OsRng));
    }

    #[test]
    fn token_of_32_bytes_is_43_base64url_chars() {
        let t = random_token(&OsRng, 32);
        assert_eq!(t.len(), 43);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }

    #[test]
    fn seeded_rng_repeats_and_differs_by_seed() {
        assert_eq!(
            random_token(&SeededRng::new(7), 16),
            random_token(&SeededRng::new(7), 16)
        );
        assert_ne!(
            random_token(&SeededRng::new(7), 16),
            random_token(&SeededRng::new(8), 16)
        );
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
