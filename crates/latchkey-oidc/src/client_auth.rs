//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3,
//! OIDC Core §9, RFC 7523 §2.2). A client uses exactly the method it registered; two methods in
//! one request are refused; secrets are compared in constant time against their stored SHA-256.

use crate::authorize::Params;
use crate::{ErrorCode, OAuthError};
use base64::Engine as _;
use latchkey_core::{AuthMethod, Client};
use latchkey_keys::jwt::{Expect, decode};
use latchkey_keys::{Alg, VerifyingKey};
use serde_json::Value;
use subtle::ConstantTimeEq;

pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A client assertion may live at most this long (RFC 7523 §3 asks for a short expiry).
pub const MAX_ASSERTION_SECS: i64 = 300;

/// The credentials a request presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    Basic {
        client_id: String,
        secret: String,
    },
    Post {
        client_id: String,
        secret: String,
    },
    Assertion {
        client_id: String,
        assertion: String,
    },
    /// A public client names itself and proves nothing.
    None {
        client_id: String,
    },
}

impl Presented {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Assertion { client_id, .. }
            | Self::None { client_id } => client_id,
        }
    }

    fn method(&self) -> AuthMethod {
        match self {
            Self::Basic { .. } => AuthMethod::ClientSecretBasic,
            Self::Post { .. } => AuthMethod::ClientSecretPost,
            Self::Assertion { .. } => AuthMethod::PrivateKeyJwt,
            Self::None { .. } => AuthMethod::None,
        }
    }
}

/// An authentication failure; `basic` asks for a 401 with `WWW-Authenticate: Basic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthError {
    pub error: OAuthError,
    pub basic: bool,
}

fn invalid_client(description: &str, basic: bool) -> ClientAuthError {
    ClientAuthError {
        error: OAuthError::invalid_client(description),
        basic,
    }
}

/// RFC 6749 §2.3.1: the id and secret are form-encoded before they are joined with `:`.
/// Strict: a `%` must start a valid escape.
fn form_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let valid_escapes = b.iter().enumerate().filter(|(_, c)| **c == b'%').all(|(i, _)| {
        b.get(i + 1..i + 3)
            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit))
    });
    if !valid_escapes {
        return None;
    }
    let plus: String = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

/// Reads the credentials of a request from its `Authorization` header and body.
pub fn parse_client_auth(authorization: Option<&str>, p: &Params) -> Result<Presented, ClientAuthError> {
    let body_id = p.get("client_id").filter(|c| !c.is_empty());
    let body_secret = p.get("client_secret");
    let assertion = p.get("client_assertion");
    let assertion_type = p.get("client_assertion_type");
    let basic = authorization.and_then(|h| {
        let (scheme, rest) = h.split_once(' ')?;
        scheme.eq_ignore_ascii_case("basic").then(|| rest.trim())
    });
    let methods =
        usize::from(basic.is_some()) + usize::from(body_secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(ClientAuthError {
            error: OAuthError::invalid_request("use one client authentication method per request"),
            basic: false,
        });
    }
    if let Some(b64) = basic {
        let bad = || {
            invalid_client(
                "the Basic credentials are not valid base64 of form-encoded id:secret",
                true,
            )
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        let (client_id, secret) = (
            form_decode(id).ok_or_else(bad)?,
            form_decode(secret).ok_or_else(bad)?,
        );
        if client_id.is_empty() {
            return Err(bad());
        }
        if body_id.is_some_and(|b| *b != client_id) {
            return Err(ClientAuthError {
                error: OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ),
                basic: true,
            });
        }
        return Ok(Presented::Basic { client_id, secret });
    }
    if let Some(assertion) = assertion {
        if assertion_type.map(String::as_str) != Some(JWT_BEARER) {
            return Err(invalid_client(
                "client_assertion_type must be jwt-bearer (RFC 7523)",
                false,
            ));
        }
        // RFC 7523 §3: the client is the assertion's `sub`; a client_id in the body must agree.
        let client_id = unverified_claim(assertion, "sub")
            .ok_or_else(|| invalid_client("the client assertion has no sub", false))?;
        if body_id.is_some_and(|b| *b != client_id) {
            return Err(invalid_client(
                "client_id differs from the assertion's sub",
                false,
            ));
        }
        return Ok(Presented::Assertion {
            client_id,
            assertion: assertion.clone(),
        });
    }
    let client_id = body_id
        .cloned()
        .ok_or_else(|| invalid_client("no client authentication and no client_id", false))?;
    Ok(match body_secret {
        Some(secret) => Presented::Post {
            client_id,
            secret: secret.clone(),
        },
        None => Presented::None { client_id },
    })
}

/// A claim of a JWT's payload before verification, only to find which client to verify for.
fn unverified_claim(token: &str, name: &str) -> Option<String> {
    if token.len() > latchkey_keys::jwt::MAX_TOKEN_BYTES {
        return None;
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get(name)?.as_str().map(str::to_owned)
}

/// What a verified assertion leaves for the caller: its `jti`, to be taken once until `exp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionJti {
    pub jti: String,
    pub exp: i64,
}

/// Authenticates `presented` as `client` (`None` when no such client: same answer as a wrong
/// secret). For `private_key_jwt` the caller must still take the returned `jti` once.
pub fn authenticate(
    presented: &Presented,
    client: Option<&Client>,
    audiences: &[&str],
    now: i64,
) -> Result<Option<AssertionJti>, ClientAuthError> {
    let basic = matches!(presented, Presented::Basic { .. });
    let fail = || invalid_client("client authentication failed", basic);
    let Some(client) = client else {
        return Err(fail());
    };
    if presented.method() != client.auth_method {
        return Err(fail());
    }
    match presented {
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            // Every live secret is compared (the current one and, during a rotation's overlap,
            // the one it replaced), so the time taken does not say which matched.
            let given = latchkey_core::sha256_hex(secret.as_bytes());
            let matched = client
                .secret_hashes(now.saturating_mul(1000))
                .filter(|stored| !stored.is_empty())
                .fold(subtle::Choice::from(0), |m, stored| {
                    m | given.as_bytes().ct_eq(stored.as_bytes())
                });
            if !bool::from(matched) {
                return Err(fail());
            }
            Ok(None)
        }
        Presented::None { .. } => Ok(None),
        Presented::Assertion { assertion, .. } => check_assertion(assertion, client, audiences, now)
            .map(Some)
            .map_err(|_| fail()),
    }
}

/// RFC 7523 §3: signed by one of the client's registered keys (the algorithm comes from the
/// key), `iss` = `sub` = client id, `aud` the issuer (the caller's `audiences`), a short `exp`, a `jti`.
fn check_assertion(
    token: &str,
    client: &Client,
    audiences: &[&str],
    now: i64,
) -> Result<AssertionJti, OAuthError> {
    let bad = |m: &str| OAuthError::new(ErrorCode::InvalidClient, m);
    let keys = client.jwks.as_ref().ok_or_else(|| bad("no registered keys"))?;
    let id = client.client_id.as_str();
    let expect = Expect {
        issuer: id,
        audience: None,
        typ: None,
        now,
        leeway_secs: 30,
    };
    let claims = decode(token, |kid| key_for(keys, kid), &expect).map_err(|e| bad(&e.to_string()))?;
    if claims.get("sub").and_then(Value::as_str) != Some(id) {
        return Err(bad("sub must be the client id"));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.contains(&a.as_str()),
        Some(Value::Array(list)) => list
            .iter()
            .any(|a| a.as_str().is_some_and(|a| audiences.contains(&a))),
        _ => false,
    };
    if !aud_ok {
        return Err(bad("aud must be the issuer"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or_default();
    if exp > now + MAX_ASSERTION_SECS {
        return Err(bad("the assertion lives too long"));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or_else(|| bad("jti is required"))?;
    Ok(AssertionJti {
        jti: jti.to_owned(),
        exp,
    })
}

/// The registered key named `kid`, with the algorithm its type implies (or its `alg`).
fn key_for(set: &Value, kid: &str) -> Option<VerifyingKey> {
    let jwk = set
        .get("keys")?
        .as_array()?
        .iter()
        .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))?;
    let alg = match jwk.get("alg").and_then(Value::as_str) {
        Some(a) => a.parse::<Alg>().ok()?,
        None => match (
            jwk.get("kty").and_then(Value::as_str),
            jwk.get("crv").and_then(Value::as_str),
        ) {
            (Some("EC"), Some("P-256")) => Alg::ES256,
            (Some("RSA"), _) => Alg::RS256,
            (Some("OKP"), Some("Ed25519")) => Alg::EdDSA,
            _ => return None,
        },
    };
    VerifyingKey::from_jwk(alg, jwk).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::{ClientType, GrantType};
    use latchkey_keys::SigningKey;
    use serde_json::json;

    fn client(method: AuthMethod) -> Client {
        Client {
            secret_hash: Some(latchkey_core::sha256_hex(b"s3cret")),
            auth_method: method,
            grant_types: vec![GrantType::ClientCredentials],
            ..crate::testing::client(ClientType::Confidential)
        }
    }

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    #[test]
    fn basic_is_form_decoded_and_checked() {
        let c = client(AuthMethod::ClientSecretBasic);
        let p = parse_client_auth(Some(&basic("c1", "s3cret")), &Params::new()).unwrap();
        assert!(authenticate(&p, Some(&c), &[], 0).is_ok());
        // "s%33cret" form-decodes to "s3cret" (RFC 6749 §2.3.1).
        let p = parse_client_auth(Some(&basic("c1", "s%33cret")), &Params::new()).unwrap();
        assert!(authenticate(&p, Some(&c), &[], 0).is_ok());
        let p = parse_client_auth(Some(&basic("c1", "wrong")), &Params::new()).unwrap();
        let e = authenticate(&p, Some(&c), &[], 0).unwrap_err();
        assert!(e.basic);
        assert_eq!(e.error.code, ErrorCode::InvalidClient);
        assert!(authenticate(&p, None, &[], 0).is_err());
    }

    #[test]
    fn a_replaced_secret_works_only_during_its_overlap() {
        let c = Client {
            previous_secret: Some(latchkey_core::PreviousSecret {
                hash: latchkey_core::sha256_hex(b"old"),
                expires_at: 100_000,
            }),
            ..client(AuthMethod::ClientSecretBasic)
        };
        let old = parse_client_auth(Some(&basic("c1", "old")), &Params::new()).unwrap();
        let new = parse_client_auth(Some(&basic("c1", "s3cret")), &Params::new()).unwrap();
        // `now` is in seconds; the overlap ends at 100 s.
        assert!(authenticate(&old, Some(&c), &[], 99).is_ok());
        assert!(authenticate(&new, Some(&c), &[], 99).is_ok());
        assert!(authenticate(&old, Some(&c), &[], 100).is_err(), "over");
        assert!(authenticate(&new, Some(&c), &[], 100).is_ok());
        let wrong = parse_client_auth(Some(&basic("c1", "other")), &Params::new()).unwrap();
        assert!(authenticate(&wrong, Some(&c), &[], 99).is_err());
    }

    #[test]
    fn malformed_and_mixed_credentials_are_refused() {
        for header in ["Basic !!!", "Basic Zm9v", &basic("c1", "%zz"), &basic("", "x")] {
            let e = parse_client_auth(Some(header), &Params::new()).unwrap_err();
            assert_eq!(e.error.code, ErrorCode::InvalidClient, "{header}");
            assert!(e.basic);
        }
        let e = parse_client_auth(
            Some(&basic("c1", "s3cret")),
            &params(&[("client_secret", "s3cret")]),
        )
        .unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
        let e = parse_client_auth(
            None,
            &params(&[
                ("client_id", "c1"),
                ("client_secret", "x"),
                ("client_assertion", "a.b.c"),
            ]),
        )
        .unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_client_uses_only_its_registered_method() {
        let c = client(AuthMethod::ClientSecretBasic);
        let post =
            parse_client_auth(None, &params(&[("client_id", "c1"), ("client_secret", "s3cret")])).unwrap();
        assert!(authenticate(&post, Some(&c), &[], 0).is_err());
        let none = parse_client_auth(None, &params(&[("client_id", "c1")])).unwrap();
        assert!(authenticate(&none, Some(&c), &[], 0).is_err());
        // A public client presenting a secret.
        let mut public = client(AuthMethod::None);
        public.client_type = ClientType::Public;
        public.secret_hash = None;
        let e = authenticate(&post, Some(&public), &[], 0).unwrap_err();
        assert_eq!(e.error.code, ErrorCode::InvalidClient);
        assert!(authenticate(&none, Some(&public), &[], 0).is_ok());
    }

    fn assertion_client() -> (Client, SigningKey, String) {
        let (k, _) = SigningKey::generate(Alg::ES256).unwrap();
        let kid = k.kid();
        let mut jwk = k.public_jwk();
        jwk["kid"] = json!(kid);
        let mut c = client(AuthMethod::PrivateKeyJwt);
        c.secret_hash = None;
        c.jwks = Some(json!({"keys": [jwk]}));
        (c, k, kid)
    }

    const AUD: &str = "https://idp.example.com/t/acme";

    fn assertion(k: &SigningKey, kid: &str, claims: Value) -> Presented {
        let t = latchkey_keys::jwt::encode(k, kid, "JWT", &claims).unwrap();
        parse_client_auth(
            None,
            &params(&[("client_assertion", &t), ("client_assertion_type", JWT_BEARER)]),
        )
        .unwrap()
    }

    #[test]
    fn private_key_jwt_checks_every_rule() {
        let (c, k, kid) = assertion_client();
        let now = 1_000_000;
        let good = json!({"iss": "c1", "sub": "c1", "aud": AUD, "exp": now + 60, "iat": now, "jti": "j1"});
        let p = assertion(&k, &kid, good.clone());
        let jti = authenticate(&p, Some(&c), &[AUD], now).unwrap().unwrap();
        assert_eq!(jti.jti, "j1");
        let with = |k2: &str, v: Value| {
            let mut c = good.clone();
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k2);
            } else {
                c[k2] = v;
            }
            c
        };
        for (claims, why) in [
            (with("aud", json!("https://other")), "wrong aud"),
            (with("iss", json!("c2")), "iss not client"),
            (with("exp", json!(now - 100)), "expired"),
            (with("exp", json!(now + 3600)), "lives too long"),
            (with("jti", Value::Null), "no jti"),
        ] {
            let p = assertion(&k, &kid, claims);
            assert!(authenticate(&p, Some(&c), &[AUD], now).is_err(), "{why}");
        }
        // A key the client did not register.
        let (other, _) = SigningKey::generate(Alg::ES256).unwrap();
        let p = assertion(&other, &kid, good.clone());
        assert!(authenticate(&p, Some(&c), &[AUD], now).is_err());
        // alg none.
        let forged = format!(
            "{}.{}.",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(good.to_string())
        );
        let p = parse_client_auth(
            None,
            &params(&[
                ("client_assertion", &forged),
                ("client_assertion_type", JWT_BEARER),
            ]),
        )
        .unwrap();
        assert!(authenticate(&p, Some(&c), &[AUD], now).is_err());
    }
}
