//! Envelope encryption: a master key (KEK) wraps per-tenant data keys (DEKs); DEKs seal values
//! with AES-256-GCM under a random 96-bit nonce and associated data naming the value's tenant,
//! table, column and row, so a ciphertext copied anywhere else does not open.
//!
//! Sealed format: `v1.{dek_id}.{base64url(nonce || ciphertext || tag)}`.

use crate::{KeyError, b64, unb64};
use aws_lc_rs::aead::{AES_256_GCM, Aad as GcmAad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Where a sealed value lives; bound into the ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub tenant: &'a str,
    pub table: &'a str,
    pub column: &'a str,
    pub row: &'a str,
}

impl Aad<'_> {
    fn bytes(&self) -> Vec<u8> {
        // Length-prefixed so no two different locations can produce the same bytes.
        let mut out = b"latchkey-aad-v1".to_vec();
        for part in [self.tenant, self.table, self.column, self.row] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out
    }
}

/// A 256-bit AES key with a short public id (a fingerprint, not the key).
pub struct SecretKey {
    pub id: String,
    bytes: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id)
    }
}

pub type MasterKey = SecretKey;
pub type DataKey = SecretKey;

fn fingerprint(bytes: &[u8; 32]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref()[..8]
        .iter()
        .fold(String::with_capacity(16), |mut s, b| {
            use std::fmt::Write as _;
            let _ = write!(s, "{b:02x}");
            s
        })
}

impl SecretKey {
    /// The key's bytes, for wrapping it (a user's key) or keying an HMAC with it.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self {
            id: fingerprint(&bytes),
            bytes,
        }
    }

    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| KeyError::Crypto("random bytes".into()))?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as standard base64, for a key file or `LATCHKEY_MASTER_KEY`.
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.bytes)
    }

    pub fn from_base64(s: &str) -> Result<Self, KeyError> {
        use base64::Engine as _;
        let s = s.trim();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(s)
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(s))
            .map_err(|_| KeyError::MasterKey("not base64".into()))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| KeyError::MasterKey(format!("{} bytes; a master key is 32", v.len())))?;
        Ok(Self::from_bytes(bytes))
    }

    fn aead(&self) -> LessSafeKey {
        // A 32-byte key always fits AES-256-GCM.
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &self.bytes).expect("32-byte AES-256 key"))
    }

    /// Encrypts `plaintext` bound to `aad`.
    pub fn seal(&self, aad: Aad<'_>, plaintext: &[u8]) -> Result<String, KeyError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| KeyError::Crypto("random nonce".into()))?;
        let mut buf = plaintext.to_vec();
        self.aead()
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                GcmAad::from(aad.bytes()),
                &mut buf,
            )
            .map_err(|_| KeyError::Crypto("sealing".into()))?;
        let mut out = nonce.to_vec();
        out.extend(buf);
        Ok(format!("v1.{}.{}", self.id, b64(&out)))
    }

    /// Decrypts a value sealed by `seal` with the same `aad`.
    pub fn open(&self, aad: Aad<'_>, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let parsed = parse(sealed)?;
        if parsed.key_id != self.id {
            return Err(KeyError::Sealed(format!(
                "sealed under key {}, not {}",
                parsed.key_id, self.id
            )));
        }
        let (nonce, ct) = parsed.body.split_at(NONCE_LEN);
        let nonce =
            Nonce::try_assume_unique_for_key(nonce).map_err(|_| KeyError::Sealed("bad nonce".into()))?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead()
            .open_in_place(nonce, GcmAad::from(aad.bytes()), &mut buf)
            .map_err(|_| KeyError::Sealed("authentication failed".into()))?;
        Ok(plain.to_vec())
    }

    /// Wraps a data key for tenant storage.
    pub fn wrap(&self, dek: &DataKey, tenant: &str) -> Result<String, KeyError> {
        self.seal(
            Aad {
                tenant,
                table: "data_keys",
                column: "wrapped",
                row: &dek.id,
            },
            &dek.bytes,
        )
    }

    pub fn unwrap_key(&self, wrapped: &str, tenant: &str, dek_id: &str) -> Result<DataKey, KeyError> {
        let raw = self.open(
            Aad {
                tenant,
                table: "data_keys",
                column: "wrapped",
                row: dek_id,
            },
            wrapped,
        )?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| KeyError::Sealed("wrapped key is not 32 bytes".into()))?;
        let dek = DataKey::from_bytes(bytes);
        if dek.id != dek_id {
            return Err(KeyError::Sealed("unwrapped key does not match its id".into()));
        }
        Ok(dek)
    }

    /// A value stored beside encrypted data so a wrong master key is noticed before anything
    /// is decrypted or, worse, encrypted under it.
    pub fn check_value(&self) -> Result<String, KeyError> {
        self.seal(CHECK_AAD, CHECK_PLAINTEXT)
    }

    pub fn matches_check(&self, check: &str) -> bool {
        self.open(CHECK_AAD, check).is_ok_and(|p| p == CHECK_PLAINTEXT)
    }
}

const CHECK_AAD: Aad<'static> = Aad {
    tenant: "",
    table: "master_key_checks",
    column: "check_value",
    row: "",
};
const CHECK_PLAINTEXT: &[u8] = b"latchkey master key check";

/// A sealed value's parts.
pub struct Sealed {
    pub key_id: String,
    body: Vec<u8>,
}

pub fn parse(sealed: &str) -> Result<Sealed, KeyError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some("v1"), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(KeyError::Sealed("not a v1 sealed value".into()));
    };
    let body = unb64(body).ok_or_else(|| KeyError::Sealed("body is not base64url".into()))?;
    if body.len() < NONCE_LEN + 16 {
        return Err(KeyError::Sealed("too short".into()));
    }
    Ok(Sealed {
        key_id: key_id.to_owned(),
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Aad<'static> = Aad {
        tenant: "t1",
        table: "signing_keys",
        column: "private_key",
        row: "kid1",
    };

    #[test]
    fn seal_round_trips_and_each_seal_differs() {
        let k = SecretKey::generate().unwrap();
        let a = k.seal(AT, b"secret").unwrap();
        let b = k.seal(AT, b"secret").unwrap();
        assert_ne!(a, b, "random nonces");
        assert!(a.starts_with(&format!("v1.{}.", k.id)));
        assert_eq!(k.open(AT, &a).unwrap(), b"secret");
    }

    #[test]
    fn ciphertext_moved_to_another_row_tenant_column_or_table_does_not_open() {
        let k = SecretKey::generate().unwrap();
        let sealed = k.seal(AT, b"secret").unwrap();
        for other in [
            Aad { row: "kid2", ..AT },
            Aad { tenant: "t2", ..AT },
            Aad {
                column: "public_jwk",
                ..AT
            },
            Aad { table: "totp", ..AT },
            // Shifting bytes between parts must not collide either.
            Aad {
                tenant: "t1s",
                table: "igning_keys",
                ..AT
            },
        ] {
            assert!(
                matches!(k.open(other, &sealed), Err(KeyError::Sealed(_))),
                "{other:?}"
            );
        }
    }

    #[test]
    fn a_flipped_bit_or_another_key_fails() {
        let k = SecretKey::generate().unwrap();
        let sealed = k.seal(AT, b"secret").unwrap();
        let mut body = unb64(sealed.rsplit('.').next().unwrap()).unwrap();
        let last = body.len() - 1;
        body[last] ^= 1;
        let tampered = format!("v1.{}.{}", k.id, b64(&body));
        assert!(k.open(AT, &tampered).is_err());
        let other = SecretKey::generate().unwrap();
        assert!(other.open(AT, &sealed).is_err());
        let relabelled = sealed.replacen(&k.id, &other.id, 1);
        assert!(other.open(AT, &relabelled).is_err());
    }

    #[test]
    fn wrapping_binds_the_data_key_to_its_tenant() {
        let kek = SecretKey::generate().unwrap();
        let dek = SecretKey::generate().unwrap();
        let wrapped = kek.wrap(&dek, "t1").unwrap();
        assert_eq!(kek.unwrap_key(&wrapped, "t1", &dek.id).unwrap().id, dek.id);
        assert!(kek.unwrap_key(&wrapped, "t2", &dek.id).is_err());
        assert!(
            SecretKey::generate()
                .unwrap()
                .unwrap_key(&wrapped, "t1", &dek.id)
                .is_err()
        );
    }

    #[test]
    fn check_value_tells_the_right_key() {
        let k = SecretKey::generate().unwrap();
        let check = k.check_value().unwrap();
        assert!(k.matches_check(&check));
        assert!(!SecretKey::generate().unwrap().matches_check(&check));
        assert_eq!(SecretKey::from_base64(&k.to_base64()).unwrap().id, k.id);
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }
}
