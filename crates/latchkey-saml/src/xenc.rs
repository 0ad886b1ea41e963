//! `EncryptedAssertion` (SAML Core §2.3.4, XML Encryption 1.1): the content key is unwrapped
//! with the connection's own SP key only (RSA-OAEP; PKCS#1 v1.5 key transport is refused, it is
//! open to padding oracles), then the assertion is decrypted with a content algorithm the
//! connection allows: AES-GCM, and AES-CBC only where the operator opted in (CBC in XML
//! Encryption is open to padding-oracle attacks: Jager and Somorovsky, "How to Break XML
//! Encryption", CCS 2011).

use crate::xml::{NS_DSIG, NS_XENC, children, is};
use crate::{Result, SamlError};
use aws_lc_rs::cipher::{AES_128, AES_256, DecryptingKey, DecryptionContext, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPrivateDecryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const RSA_OAEP_11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";

/// A content-encryption algorithm of XML Encryption (1.1 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentCipher {
    Aes128Gcm,
    Aes256Gcm,
    /// Legacy: only for a connection whose operator opted in.
    Aes128Cbc,
    /// Legacy: only for a connection whose operator opted in.
    Aes256Cbc,
}

impl ContentCipher {
    /// What a connection accepts by default: authenticated encryption only.
    pub const GCM: &'static [ContentCipher] = &[ContentCipher::Aes128Gcm, ContentCipher::Aes256Gcm];
    /// What a connection opted in to legacy CBC accepts.
    pub const GCM_AND_LEGACY_CBC: &'static [ContentCipher] = &[
        ContentCipher::Aes128Gcm,
        ContentCipher::Aes256Gcm,
        ContentCipher::Aes128Cbc,
        ContentCipher::Aes256Cbc,
    ];

    /// The allow-list of a connection: GCM, plus CBC when `legacy_cbc` is on.
    pub fn allowed(legacy_cbc: bool) -> &'static [ContentCipher] {
        if legacy_cbc {
            Self::GCM_AND_LEGACY_CBC
        } else {
            Self::GCM
        }
    }

    /// The algorithm URI (XML Encryption 1.1 §5.2.2 and §5.2.4).
    pub fn uri(self) -> &'static str {
        match self {
            Self::Aes128Gcm => "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            Self::Aes256Gcm => "http://www.w3.org/2009/xmlenc11#aes256-gcm",
            Self::Aes128Cbc => "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
            Self::Aes256Cbc => "http://www.w3.org/2001/04/xmlenc#aes256-cbc",
        }
    }

    fn from_uri(uri: &str) -> Option<Self> {
        Self::GCM_AND_LEGACY_CBC.iter().copied().find(|c| c.uri() == uri)
    }
}

fn fail(why: &str) -> SamlError {
    SamlError::Decryption(why.to_owned())
}

fn algorithm<'a>(n: Node<'a, '_>) -> Result<&'a str> {
    children(n, NS_XENC, "EncryptionMethod")
        .next()
        .and_then(|m| m.attribute("Algorithm"))
        .ok_or_else(|| fail("EncryptionMethod is missing"))
}

fn cipher_value(n: Node<'_, '_>) -> Result<Vec<u8>> {
    let v = children(n, NS_XENC, "CipherData")
        .next()
        .and_then(|d| children(d, NS_XENC, "CipherValue").next())
        .ok_or_else(|| fail("CipherValue is missing"))?;
    let text: String = crate::xml::text(v)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(text)
        .map_err(|_| fail("CipherValue is not base64"))
}

/// Decrypts the `EncryptedAssertion` element `ea` with the SP's PKCS#8 RSA key; returns the
/// assertion's XML text. The content algorithm is checked against `allowed` before any key is
/// touched, so a refused algorithm is never an oracle.
pub(crate) fn decrypt_assertion(
    ea: Node<'_, '_>,
    sp_key_pkcs8: &[u8],
    allowed: &[ContentCipher],
) -> Result<String> {
    let data = children(ea, NS_XENC, "EncryptedData")
        .next()
        .ok_or_else(|| fail("EncryptedData is missing"))?;
    let uri = algorithm(data)?;
    let cipher = ContentCipher::from_uri(uri)
        .ok_or_else(|| SamlError::WeakAlgorithm(format!("data encryption {uri}")))?;
    if !allowed.contains(&cipher) {
        return Err(SamlError::CipherNotAllowed(uri.to_owned()));
    }
    // The wrapped key sits in EncryptedData's KeyInfo or beside it.
    let keys: Vec<Node<'_, '_>> = ea
        .descendants()
        .filter(|n| is(*n, NS_XENC, "EncryptedKey"))
        .collect();
    let [encrypted_key] = keys.as_slice() else {
        return Err(fail("expected exactly one EncryptedKey"));
    };
    let content_key = unwrap_key(*encrypted_key, sp_key_pkcs8)?;
    let mut body = cipher_value(data)?;
    let plain = match cipher {
        ContentCipher::Aes128Gcm => gcm(&aws_lc_rs::aead::AES_128_GCM, &content_key, &mut body)?,
        ContentCipher::Aes256Gcm => gcm(&aws_lc_rs::aead::AES_256_GCM, &content_key, &mut body)?,
        ContentCipher::Aes128Cbc => cbc(&AES_128, &content_key, &mut body)?,
        ContentCipher::Aes256Cbc => cbc(&AES_256, &content_key, &mut body)?,
    };
    String::from_utf8(plain).map_err(|_| fail("the decrypted assertion is not UTF-8"))
}

fn unwrap_key(ek: Node<'_, '_>, sp_key_pkcs8: &[u8]) -> Result<Vec<u8>> {
    let method = children(ek, NS_XENC, "EncryptionMethod")
        .next()
        .ok_or_else(|| fail("EncryptionMethod of the key is missing"))?;
    let alg = method.attribute("Algorithm").unwrap_or_default();
    if alg != RSA_OAEP_MGF1P && alg != RSA_OAEP_11 {
        return Err(SamlError::WeakAlgorithm(format!("key transport {alg}")));
    }
    // Only SHA-1 in OAEP is available both ways here; it is sound inside OAEP (no collisions
    // involved), and the IdPs we know use it.
    let digest = children(method, NS_DSIG, "DigestMethod")
        .next()
        .and_then(|d| d.attribute("Algorithm"))
        .unwrap_or(SHA1);
    let mgf = method
        .children()
        .find(|n| n.is_element() && n.tag_name().name() == "MGF")
        .and_then(|m| m.attribute("Algorithm"))
        .unwrap_or(MGF1_SHA1);
    if digest != SHA1 || mgf != MGF1_SHA1 || children(method, NS_XENC, "OAEPparams").next().is_some() {
        return Err(SamlError::Decryption("unsupported OAEP parameters".into()));
    }
    let wrapped = cipher_value(ek)?;
    let key = PrivateDecryptingKey::from_pkcs8(sp_key_pkcs8).map_err(|_| fail("the SP key does not load"))?;
    let key = OaepPrivateDecryptingKey::new(key).map_err(|_| fail("the SP key does not load"))?;
    let mut out = vec![0u8; key.min_output_size()];
    let plain = key
        .decrypt(&OAEP_SHA1_MGF1SHA1, &wrapped, &mut out, None)
        .map_err(|_| fail("the content key does not open with this connection's key"))?;
    Ok(plain.to_vec())
}

fn gcm(alg: &'static aws_lc_rs::aead::Algorithm, key: &[u8], body: &mut [u8]) -> Result<Vec<u8>> {
    use aws_lc_rs::aead::{Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
    if body.len() < NONCE_LEN + 16 {
        return Err(fail("ciphertext too short"));
    }
    let key = LessSafeKey::new(UnboundKey::new(alg, key).map_err(|_| fail("content key length"))?);
    let (nonce, rest) = body.split_at_mut(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail("nonce"))?;
    let plain = key
        .open_in_place(nonce, Aad::empty(), rest)
        .map_err(|_| fail("the assertion does not decrypt"))?;
    Ok(plain.to_vec())
}

fn cbc(alg: &'static aws_lc_rs::cipher::Algorithm, key: &[u8], body: &mut [u8]) -> Result<Vec<u8>> {
    if body.len() < 32 || !body.len().is_multiple_of(16) {
        return Err(fail("ciphertext length"));
    }
    let (iv, rest) = body.split_at_mut(16);
    let iv: [u8; 16] = iv.try_into().map_err(|_| fail("iv"))?;
    let key = DecryptingKey::cbc(UnboundCipherKey::new(alg, key).map_err(|_| fail("content key length"))?)
        .map_err(|_| fail("content key"))?;
    let plain = key
        .decrypt(rest, DecryptionContext::Iv128(FixedLength::from(iv)))
        .map_err(|_| fail("the assertion does not decrypt"))?;
    // XML Encryption §5.2: the last octet says how many padding octets to drop.
    let pad = usize::from(*plain.last().unwrap_or(&0));
    if pad == 0 || pad > 16 || pad > plain.len() {
        return Err(fail("padding"));
    }
    let keep = plain.len() - pad;
    Ok(plain[..keep].to_vec())
}
