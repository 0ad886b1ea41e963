//! A tenant's pairwise-subject salt (OIDC Core §8.1): the secret that keys every pairwise `sub`
//! of the tenant. A dedicated 256-bit value made once per tenant and stored sealed, not derived
//! from the data key: the data key is rotated (and the master key replaced), and a pairwise
//! `sub` must stay the same forever. Rotations re-seal it; its value never changes.

use crate::KeyError;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// 32 secret bytes; `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct PairwiseSalt([u8; 32]);

impl std::fmt::Debug for PairwiseSalt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PairwiseSalt(..)")
    }
}

impl PairwiseSalt {
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Crypto("random bytes".into()))?;
        Ok(Self(bytes))
    }

    /// Reads the bytes a sealed salt opens to.
    pub(crate) fn from_opened(raw: &[u8]) -> Result<Self, KeyError> {
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Sealed("the pairwise salt is not 32 bytes".into()))?;
        Ok(Self(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// HMAC-SHA256 (RFC 2104) of `data` keyed by the salt: what `latchkey_oidc::subject`
    /// makes a pairwise `sub` from.
    pub fn hmac_sha256(&self, data: &[u8]) -> [u8; 32] {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let mut out = [0u8; 32];
        out.copy_from_slice(aws_lc_rs::hmac::sign(&key, data).as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_and_debug_hides_the_bytes() {
        // RFC 4231 §4.3 (test case 2) uses a 4-byte key; HMAC pads any key to the block size,
        // so the same key zero-padded to 32 bytes gives the same tag.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let tag = PairwiseSalt::from_bytes(key).hmac_sha256(b"what do ya want for nothing?");
        let hex = tag.iter().fold(String::new(), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        });
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{:?}", PairwiseSalt::from_bytes(key)), "PairwiseSalt(..)");
        let a = PairwiseSalt::generate().unwrap();
        assert_ne!(a, PairwiseSalt::generate().unwrap());
        assert!(PairwiseSalt::from_opened(&[1, 2, 3]).is_err());
    }
}
