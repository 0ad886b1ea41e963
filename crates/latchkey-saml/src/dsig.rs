//! Enveloped XML signatures (XMLDSig 1.1) in the narrow profile SAML uses (SAML Core §5.4): one
//! `Reference` to the ID of the element the signature sits in, the enveloped-signature and
//! exclusive c14n transforms, SHA-256 or stronger, RSA or ECDSA P-256. Anything else is refused
//! rather than interpreted. Keys come from the connection's pinned certificates only; `KeyInfo`
//! in the document is never read (S1).

use crate::certs::PublicKey;
use crate::xml::{NS_DSIG, children, is, only_child};
use crate::{Result, SamlError, c14n};
use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use roxmltree::Node;

const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const NS_EXC_C14N: &str = EXC_C14N;

#[derive(Clone, Copy)]
pub(crate) enum SigAlg {
    RsaSha256,
    RsaSha384,
    RsaSha512,
    EcdsaSha256,
}

pub(crate) fn signature_method(uri: &str) -> Result<SigAlg> {
    match uri {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => Ok(SigAlg::RsaSha256),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => Ok(SigAlg::RsaSha384),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => Ok(SigAlg::RsaSha512),
        "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => Ok(SigAlg::EcdsaSha256),
        other => Err(SamlError::WeakAlgorithm(format!("signature method {other}"))),
    }
}

fn digest_method(uri: &str) -> Result<&'static digest::Algorithm> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(&digest::SHA256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(&digest::SHA384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(&digest::SHA512),
        other => Err(SamlError::WeakAlgorithm(format!("digest method {other}"))),
    }
}

fn shape(why: &str) -> SamlError {
    SamlError::SignatureShape(why.to_owned())
}

fn required<'a, 'i>(n: Node<'a, 'i>, name: &'a str) -> Result<Node<'a, 'i>> {
    only_child(n, NS_DSIG, name)?.ok_or_else(|| shape(&format!("{name} is missing")))
}

fn algorithm<'a>(n: Node<'a, '_>) -> Result<&'a str> {
    n.attribute("Algorithm")
        .ok_or_else(|| shape("an Algorithm is missing"))
}

/// The PrefixList of an exclusive c14n transform or canonicalization method.
fn prefix_list<'a>(method: Node<'a, '_>) -> Result<Vec<&'a str>> {
    let mut lists = children(method, NS_EXC_C14N, "InclusiveNamespaces");
    let list = lists.next().and_then(|l| l.attribute("PrefixList")).unwrap_or("");
    if lists.next().is_some() {
        return Err(shape("more than one InclusiveNamespaces"));
    }
    Ok(list.split_whitespace().collect())
}

fn b64(n: Node<'_, '_>) -> Result<Vec<u8>> {
    let text: String = crate::xml::text(n)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    STANDARD
        .decode(text)
        .map_err(|_| shape("a base64 value does not decode"))
}

/// Verifies the enveloped signature `sig`, a `ds:Signature` child of `signed`: the reference
/// names `signed`'s ID (which the caller has checked is unique), and the digest and signature
/// verify with one of `keys`. Returns the index in `keys` of the key that verified it.
pub(crate) fn verify_enveloped(
    src: &str,
    signed: Node<'_, '_>,
    sig: Node<'_, '_>,
    keys: &[PublicKey],
) -> Result<usize> {
    if sig.parent() != Some(signed) || !is(sig, NS_DSIG, "Signature") {
        return Err(shape("the signature is not enveloped in the signed element"));
    }
    // XSW8 hides an element in ds:Object; SAML signatures never carry one.
    if children(sig, NS_DSIG, "Object").next().is_some() {
        return Err(shape("ds:Object in a SAML signature"));
    }
    let signed_info = required(sig, "SignedInfo")?;
    if sig.first_element_child() != Some(signed_info) {
        return Err(shape("SignedInfo must come first"));
    }
    let c14n_method = required(signed_info, "CanonicalizationMethod")?;
    if algorithm(c14n_method)? != EXC_C14N {
        return Err(shape("SignedInfo must use exclusive c14n without comments"));
    }
    let info_prefixes = prefix_list(c14n_method)?;
    let method = signature_method(algorithm(required(signed_info, "SignatureMethod")?)?)?;

    let mut references = children(signed_info, NS_DSIG, "Reference");
    let reference = references.next().ok_or_else(|| shape("no Reference"))?;
    if references.next().is_some() {
        return Err(shape("more than one Reference"));
    }
    let id = signed
        .attribute("ID")
        .filter(|i| !i.is_empty())
        .ok_or_else(|| shape("the signed element has no ID"))?;
    if reference.attribute("URI") != Some(&format!("#{id}")) {
        return Err(shape("the Reference does not name the enveloping element"));
    }

    let transforms = required(reference, "Transforms")?;
    let list: Vec<Node<'_, '_>> = children(transforms, NS_DSIG, "Transform").collect();
    let (enveloped, exc) = match list.as_slice() {
        [a, b] => (*a, *b),
        _ => {
            return Err(shape(
                "transforms must be enveloped-signature then exclusive c14n",
            ));
        }
    };
    if algorithm(enveloped)? != ENVELOPED || algorithm(exc)? != EXC_C14N {
        return Err(shape(
            "transforms must be enveloped-signature then exclusive c14n",
        ));
    }
    let ref_prefixes = prefix_list(exc)?;
    let digest_alg = digest_method(algorithm(required(reference, "DigestMethod")?)?)?;
    let expected = b64(required(reference, "DigestValue")?)?;

    let canonical = c14n::canonicalize(src, signed, Some(sig.id()), &ref_prefixes);
    let actual = digest::digest(digest_alg, &canonical);
    if actual.as_ref() != expected.as_slice() {
        return Err(SamlError::BadSignature);
    }

    let signature_value = b64(required(sig, "SignatureValue")?)?;
    let message = c14n::canonicalize(src, signed_info, None, &info_prefixes);
    verify_with_keys(method, keys, &message, &signature_value)
}

/// The index of the first key that verifies `signature` over `message` with `method`.
pub(crate) fn verify_with_keys(
    method: SigAlg,
    keys: &[PublicKey],
    message: &[u8],
    signature: &[u8],
) -> Result<usize> {
    let verified = keys.iter().position(|k| {
        let (alg, key): (&'static dyn signature::VerificationAlgorithm, &[u8]) = match (method, k) {
            (SigAlg::RsaSha256, PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA256, k),
            (SigAlg::RsaSha384, PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA384, k),
            (SigAlg::RsaSha512, PublicKey::Rsa(k)) => (&signature::RSA_PKCS1_2048_8192_SHA512, k),
            (SigAlg::EcdsaSha256, PublicKey::EcP256(k)) => (&signature::ECDSA_P256_SHA256_FIXED, k),
            _ => return false,
        };
        UnparsedPublicKey::new(alg, key)
            .verify(message, signature)
            .is_ok()
    });
    verified.ok_or(SamlError::BadSignature)
}
