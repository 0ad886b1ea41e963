//! Key pairs parsed once and kept: generation, PKCS#8 round trip, public JWK, RFC 7638 `kid`,
//! signing; and public keys from JWKs for verification with the algorithm pinned to the key.

use crate::{Alg, KeyError, b64};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

/// A parsed private key.
pub enum SigningKey {
    Es256(EcdsaKeyPair),
    Rs256(RsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.alg())
    }
}

fn crypto(what: &str) -> impl Fn(aws_lc_rs::error::Unspecified) -> KeyError + '_ {
    move |_| KeyError::Crypto(what.to_owned())
}

impl SigningKey {
    /// A fresh key pair and its PKCS#8 encoding (to be stored encrypted).
    pub fn generate(alg: Alg) -> Result<(Self, Vec<u8>), KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match alg {
            Alg::ES256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(crypto("generating a P-256 key"))?
                .as_ref()
                .to_vec(),
            Alg::RS256 => RsaKeyPair::generate(KeySize::Rsa2048)
                .map_err(crypto("generating an RSA key"))?
                .as_der()
                .map_err(crypto("encoding an RSA key"))?
                .as_ref()
                .to_vec(),
            Alg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(crypto("generating an Ed25519 key"))?
                .as_ref()
                .to_vec(),
        };
        Ok((Self::from_pkcs8(alg, &pkcs8)?, pkcs8))
    }

    pub fn from_pkcs8(alg: Alg, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| KeyError::Crypto(format!("{alg} key rejected: {e}"));
        Ok(match alg {
            Alg::ES256 => SigningKey::Es256(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(bad)?,
            ),
            Alg::RS256 => SigningKey::Rs256(RsaKeyPair::from_pkcs8(pkcs8).map_err(bad)?),
            Alg::EdDSA => SigningKey::EdDsa(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(bad)?),
        })
    }

    pub fn alg(&self) -> Alg {
        match self {
            SigningKey::Es256(_) => Alg::ES256,
            SigningKey::Rs256(_) => Alg::RS256,
            SigningKey::EdDsa(_) => Alg::EdDSA,
        }
    }

    /// The public half as a JWK (RFC 7517/7518/8037) without `kid`, `alg` or `use`.
    pub fn public_jwk(&self) -> Value {
        match self {
            SigningKey::Es256(k) => {
                // Uncompressed point: 0x04 || x || y.
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            SigningKey::Rs256(k) => {
                let pk = k.public_key();
                json!({
                    "kty": "RSA",
                    "n": b64(pk.modulus().big_endian_without_leading_zero()),
                    "e": b64(pk.exponent().big_endian_without_leading_zero()),
                })
            }
            SigningKey::EdDsa(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// The key id: the RFC 7638 thumbprint of the public key.
    pub fn kid(&self) -> String {
        thumbprint(&self.public_jwk())
    }

    /// A JWS signature over `message` (ECDSA in the fixed r||s form JWS uses).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        match self {
            SigningKey::Es256(k) => Ok(k
                .sign(&SystemRandom::new(), message)
                .map_err(crypto("ES256 signing"))?
                .as_ref()
                .to_vec()),
            SigningKey::Rs256(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut sig,
                )
                .map_err(crypto("RS256 signing"))?;
                Ok(sig)
            }
            SigningKey::EdDsa(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// RFC 7638: SHA-256 over the required members, in lexicographic order, no whitespace.
pub fn thumbprint(jwk: &Value) -> String {
    let s = |k: &str| jwk.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let canonical = match s("kty").as_str() {
        "EC" => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            s("crv"),
            s("x"),
            s("y")
        ),
        "RSA" => format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, s("e"), s("n")),
        _ => format!(r#"{{"crv":"{}","kty":"OKP","x":"{}"}}"#, s("crv"), s("x")),
    };
    b64(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes()).as_ref())
}

/// A public key from a JWK, bound to one algorithm.
#[derive(Debug, Clone)]
pub struct VerifyingKey {
    pub alg: Alg,
    der_or_raw: Vec<u8>,
}

impl VerifyingKey {
    /// Builds the key from its JWK; the algorithm comes from the key ring, never from a token.
    pub fn from_jwk(alg: Alg, jwk: &Value) -> Result<Self, KeyError> {
        let field = |k: &str| -> Result<Vec<u8>, KeyError> {
            let v = jwk
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| KeyError::Crypto(format!("JWK lacks {k}")))?;
            crate::unb64(v).ok_or_else(|| KeyError::Crypto(format!("JWK member {k} is not base64url")))
        };
        let der_or_raw = match alg {
            Alg::ES256 => {
                let (x, y) = (field("x")?, field("y")?);
                if x.len() != 32 || y.len() != 32 {
                    return Err(KeyError::Crypto("P-256 coordinates must be 32 bytes".into()));
                }
                [&[4u8][..], &x, &y].concat()
            }
            Alg::RS256 => rsa_public_der(&field("n")?, &field("e")?),
            Alg::EdDSA => field("x")?,
        };
        Ok(Self { alg, der_or_raw })
    }

    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Alg::EdDSA => &signature::ED25519,
        };
        UnparsedPublicKey::new(alg, &self.der_or_raw)
            .verify(message, sig)
            .is_ok()
    }
}

/// DER `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
fn rsa_public_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn len(out: &mut Vec<u8>, n: usize) {
        if n < 0x80 {
            out.push(n as u8);
        } else {
            let bytes: Vec<u8> = n.to_be_bytes().iter().copied().skip_while(|b| *b == 0).collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
    }
    fn int(out: &mut Vec<u8>, v: &[u8]) {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| *b == 0).collect();
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        out.push(0x02);
        len(out, v.len() + usize::from(pad));
        if pad {
            out.push(0);
        }
        out.extend(v);
    }
    let mut body = Vec::new();
    int(&mut body, n);
    int(&mut body, e);
    let mut out = vec![0x30];
    len(&mut out, body.len());
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_through_its_jwk() {
        for alg in Alg::ALL {
            let (key, pkcs8) = SigningKey::generate(alg).unwrap();
            let again = SigningKey::from_pkcs8(alg, &pkcs8).unwrap();
            assert_eq!(key.kid(), again.kid(), "{alg}: PKCS#8 round trip keeps the key");
            let sig = key.sign(b"payload").unwrap();
            let vk = VerifyingKey::from_jwk(alg, &key.public_jwk()).unwrap();
            assert!(vk.verify(b"payload", &sig), "{alg}");
            assert!(!vk.verify(b"payloaD", &sig), "{alg}: a modified message fails");
            let jwk = key.public_jwk().to_string();
            assert!(!jwk.contains("\"d\""), "{alg}: no private member in the JWK");
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(thumbprint(&jwk), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn a_key_verifies_only_its_own_algorithm() {
        let (es, _) = SigningKey::generate(Alg::ES256).unwrap();
        let sig = es.sign(b"m").unwrap();
        let (ed, _) = SigningKey::generate(Alg::EdDSA).unwrap();
        let vk = VerifyingKey::from_jwk(Alg::EdDSA, &ed.public_jwk()).unwrap();
        assert!(!vk.verify(b"m", &sig));
        assert!(
            VerifyingKey::from_jwk(Alg::RS256, &es.public_jwk()).is_err(),
            "an EC JWK is no RSA key"
        );
    }
}
