//! Encrypted assertions (XML Encryption 1.1) and the connection's content-algorithm allow-list:
//! the xmlsec1-signed fixture assertion is encrypted here to a fresh SP key (RSA-OAEP key
//! transport), with AES-GCM or AES-CBC. The end-to-end run with pysaml2/xmlsec1 as the
//! encrypting IdP is in the workspace's `tests/tests/saml.rs`.

#![allow(clippy::unwrap_used)]

mod common;

use common::{expected, fixture, idp};

use aws_lc_rs::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_256, EncryptionContext, PaddedBlockEncryptingKey, UnboundCipherKey};
use aws_lc_rs::iv::FixedLength;
use aws_lc_rs::rsa::{OAEP_SHA1_MGF1SHA1, OaepPublicEncryptingKey, PrivateDecryptingKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use latchkey_saml::{ContentCipher, SamlError, generate_sp_key, validate};

/// The fixture response with its signed assertion encrypted to the key `pkcs8` under `cipher`.
fn encrypted_response(pkcs8: &[u8], cipher: ContentCipher) -> String {
    let doc = fixture("signed-assertion.xml");
    let start = doc.find("<saml:Assertion").unwrap();
    let end = doc.find("</saml:Assertion>").unwrap() + "</saml:Assertion>".len();
    let plain = &doc[start..end];
    let key_len = match cipher {
        ContentCipher::Aes128Gcm | ContentCipher::Aes128Cbc => 16,
        ContentCipher::Aes256Gcm | ContentCipher::Aes256Cbc => 32,
    };
    let content_key: Vec<u8> = (0..key_len).map(|i| i as u8 ^ 0x5a).collect();
    let body = match cipher {
        ContentCipher::Aes128Gcm | ContentCipher::Aes256Gcm => {
            let alg = if key_len == 16 { &AES_128_GCM } else { &AES_256_GCM };
            let key = LessSafeKey::new(UnboundKey::new(alg, &content_key).unwrap());
            let nonce = [7u8; 12];
            let mut out = plain.as_bytes().to_vec();
            key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut out)
                .unwrap();
            [nonce.as_slice(), &out].concat()
        }
        ContentCipher::Aes128Cbc | ContentCipher::Aes256Cbc => {
            assert_eq!(key_len, 32, "the tests use AES-256-CBC");
            let key =
                PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &content_key).unwrap())
                    .unwrap();
            let iv = [9u8; 16];
            let mut out = plain.as_bytes().to_vec();
            key.less_safe_encrypt(&mut out, EncryptionContext::Iv128(FixedLength::from(iv)))
                .unwrap();
            [iv.as_slice(), &out].concat()
        }
    };
    let public = PrivateDecryptingKey::from_pkcs8(pkcs8).unwrap().public_key();
    let oaep = OaepPublicEncryptingKey::new(public).unwrap();
    let mut wrapped = vec![0u8; oaep.ciphertext_size()];
    let wrapped = oaep
        .encrypt(&OAEP_SHA1_MGF1SHA1, &content_key, &mut wrapped, None)
        .unwrap()
        .to_vec();
    let encrypted = format!(
        concat!(
            r#"<saml:EncryptedAssertion><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#" Type="http://www.w3.org/2001/04/xmlenc#Element">"#,
            r#"<xenc:EncryptionMethod Algorithm="{alg}"/>"#,
            r#"<ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><xenc:EncryptedKey>"#,
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"/>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{key}</xenc:CipherValue></xenc:CipherData></xenc:EncryptedKey></ds:KeyInfo>"#,
            r#"<xenc:CipherData><xenc:CipherValue>{body}</xenc:CipherValue></xenc:CipherData>"#,
            r#"</xenc:EncryptedData></saml:EncryptedAssertion>"#
        ),
        alg = cipher.uri(),
        key = STANDARD.encode(wrapped),
        body = STANDARD.encode(body),
    );
    format!("{}{encrypted}{}", &doc[..start], &doc[end..])
}

#[test]
fn gcm_encrypted_assertions_are_accepted_by_default() {
    let sp = generate_sp_key("sp", common::NOW).unwrap();
    let idp = idp(&["idp.crt"]);
    for cipher in [ContentCipher::Aes128Gcm, ContentCipher::Aes256Gcm] {
        let exp = latchkey_saml::Expected {
            sp_key_pkcs8: Some(&sp.pkcs8_der),
            ..expected(&idp)
        };
        assert_eq!(exp.content_ciphers, ContentCipher::GCM);
        let a = validate(&encrypted_response(&sp.pkcs8_der, cipher), &exp).unwrap();
        assert!(a.encrypted);
        assert_eq!(a.name_id, "alice@corp.example");
    }
}

#[test]
fn cbc_encrypted_assertion_to_a_gcm_only_connection_is_refused() {
    let sp = generate_sp_key("sp", common::NOW).unwrap();
    let idp = idp(&["idp.crt"]);
    let doc = encrypted_response(&sp.pkcs8_der, ContentCipher::Aes256Cbc);
    let gcm_only = latchkey_saml::Expected {
        sp_key_pkcs8: Some(&sp.pkcs8_der),
        ..expected(&idp)
    };
    let err = validate(&doc, &gcm_only).unwrap_err();
    assert_eq!(
        err,
        SamlError::CipherNotAllowed("http://www.w3.org/2001/04/xmlenc#aes256-cbc".into())
    );
    assert_eq!(err.reason(), "cipher_not_allowed");
    assert!(
        err.to_string().contains("not allowed for this connection"),
        "{err}"
    );
    // The same document opens once the operator opts the connection in to legacy CBC.
    let legacy = latchkey_saml::Expected {
        content_ciphers: ContentCipher::allowed(true),
        ..gcm_only
    };
    assert!(validate(&doc, &legacy).unwrap().encrypted);
}

#[test]
fn a_refused_cipher_is_refused_before_the_key_is_tried() {
    // Ciphertext our key does not open: GCM-only refuses CBC by its name, not as a failed
    // decryption, so no padding or key oracle is reachable.
    let sp = generate_sp_key("sp", common::NOW).unwrap();
    let other = generate_sp_key("other", common::NOW).unwrap();
    let idp = idp(&["idp.crt"]);
    let exp = latchkey_saml::Expected {
        sp_key_pkcs8: Some(&sp.pkcs8_der),
        ..expected(&idp)
    };
    let to_other_cbc = encrypted_response(&other.pkcs8_der, ContentCipher::Aes256Cbc);
    assert_eq!(
        validate(&to_other_cbc, &exp).unwrap_err().reason(),
        "cipher_not_allowed"
    );
    let to_other_gcm = encrypted_response(&other.pkcs8_der, ContentCipher::Aes256Gcm);
    assert_eq!(validate(&to_other_gcm, &exp).unwrap_err().reason(), "decryption");
}
