//! PKCE (RFC 7636) as the OAuth 2.0 Security BCP (RFC 9700 §2.1.1) wants it: `S256` only
//! (`plain` is refused), challenges and verifiers of 43–128 characters of the unreserved set,
//! compared in constant time.

use crate::OAuthError;
use base64::Engine as _;
use subtle::ConstantTimeEq;

/// The only method accepted.
pub const S256: &str = "S256";

/// A `code_challenge` as the authorization request sends it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// A challenge as stored with its code (checked when the code was issued).
    pub fn from_stored(s: &str) -> Self {
        Self(s.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// RFC 7636 §4.1: `[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"`, 43 to 128 characters.
fn unreserved_43_to_128(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks the authorization request's `code_challenge` and `code_challenge_method`.
/// `Ok(None)` when the request has no challenge (the caller decides whether the client may go
/// without one).
pub fn check_code_challenge(
    challenge: Option<&str>,
    method: Option<&str>,
) -> Result<Option<CodeChallenge>, OAuthError> {
    match (challenge, method) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(OAuthError::invalid_request(
            "code_challenge_method without code_challenge",
        )),
        // RFC 7636 §4.3 defaults a missing method to plain, which is not accepted here.
        (Some(_), None | Some("plain")) => Err(OAuthError::invalid_request(
            "code_challenge_method must be S256 (plain is not supported)",
        )),
        (Some(_), Some(m)) if m != S256 => Err(OAuthError::invalid_request(format!(
            "code_challenge_method {m:?} is not supported; use S256"
        ))),
        (Some(c), Some(_)) => {
            // An S256 challenge is the unpadded base64url of 32 bytes: exactly 43 characters.
            if c.len() == 43 && unreserved_43_to_128(c) {
                Ok(Some(CodeChallenge(c.to_owned())))
            } else {
                Err(OAuthError::invalid_request(
                    "code_challenge must be the base64url SHA-256 of the verifier (43 characters)",
                ))
            }
        }
    }
}

/// Checks the token request's `code_verifier` against the challenge stored with the code.
/// A code issued with a challenge needs a matching verifier; one issued without accepts none.
pub fn check_code_verifier(stored: Option<&CodeChallenge>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (stored, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "code_verifier sent for a code issued without code_challenge",
        )),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is missing")),
        (Some(_), Some(v)) if !unreserved_43_to_128(v) => Err(OAuthError::invalid_grant(
            "code_verifier must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        )),
        (Some(c), Some(v)) => {
            let computed = s256(v);
            if bool::from(computed.as_bytes().ct_eq(c.0.as_bytes())) {
                Ok(())
            } else {
                Err(OAuthError::invalid_grant(
                    "code_verifier does not match the code_challenge",
                ))
            }
        }
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))` without padding.
pub fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(latchkey_core::sha256(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_example_verifies() {
        assert_eq!(s256(VERIFIER), CHALLENGE);
        let c = check_code_challenge(Some(CHALLENGE), Some("S256")).unwrap();
        assert!(check_code_verifier(c.as_ref(), Some(VERIFIER)).is_ok());
    }

    #[test]
    fn plain_and_unknown_methods_are_refused() {
        for method in [None, Some("plain"), Some("s256"), Some("S512")] {
            let e = check_code_challenge(Some(CHALLENGE), method).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{method:?}");
        }
        assert!(check_code_challenge(None, Some("S256")).is_err());
        assert_eq!(check_code_challenge(None, None).unwrap(), None);
    }

    #[test]
    fn malformed_challenges_are_refused() {
        for bad in [
            "short",
            &"a".repeat(44),
            &format!("{}=", &CHALLENGE[..42]),
            &CHALLENGE.replace('-', "+"),
        ] {
            assert!(check_code_challenge(Some(bad), Some("S256")).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrong_missing_or_unexpected_verifiers_fail() {
        let c = check_code_challenge(Some(CHALLENGE), Some("S256")).unwrap();
        let wrong = format!("{}A", &VERIFIER[..42]);
        for v in [
            None,
            Some(wrong.as_str()),
            Some("too-short"),
            Some(&*"x".repeat(129)),
        ] {
            let e = check_code_verifier(c.as_ref(), v).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidGrant, "{v:?}");
        }
        // The challenge itself is not a verifier (a downgrade to plain).
        assert!(check_code_verifier(c.as_ref(), Some(CHALLENGE)).is_err());
        // A code issued without PKCE can't be redeemed with a verifier, and needs none.
        assert!(check_code_verifier(None, Some(VERIFIER)).is_err());
        assert!(check_code_verifier(None, None).is_ok());
    }
}
