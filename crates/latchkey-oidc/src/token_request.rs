//! Token endpoint requests (RFC 6749 §3.2), parsed once from the form parameters into one
//! typed request per grant. Client authentication comes first and is not done here.

use crate::authorize::Params;
use crate::{ErrorCode, OAuthError};
use latchkey_core::{Client, GrantType};

/// RFC 6749 §4.1.3 with RFC 7636 §4.5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

/// RFC 6749 §6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub scope: Option<String>,
}

/// RFC 6749 §4.4.2 with an RFC 8707 `resource`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCredentialsRequest {
    pub scope: Option<String>,
    pub resource: Option<String>,
}

/// One token request, by its `grant_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    RefreshToken(RefreshRequest),
    ClientCredentials(ClientCredentialsRequest),
}

impl TokenRequest {
    /// Reads the request of the authenticated `client`. The RFC 6749 §5.2 errors come in this
    /// order: `invalid_request` without a `grant_type`, `unsupported_grant_type` for one we don't
    /// know, `unauthorized_client` for one the client may not use, then `invalid_request` for a
    /// missing parameter.
    pub fn parse(p: &Params, client: &Client) -> Result<Self, OAuthError> {
        let (grant, name) = match p.get("grant_type").map(String::as_str) {
            Some(g @ "authorization_code") => (GrantType::AuthorizationCode, g),
            Some(g @ "refresh_token") => (GrantType::RefreshToken, g),
            Some(g @ "client_credentials") => (GrantType::ClientCredentials, g),
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(g) => {
                return Err(OAuthError::new(
                    ErrorCode::UnsupportedGrantType,
                    format!("grant_type {g:?} is not supported"),
                ));
            }
        };
        if !client.grant_types.contains(&grant) {
            return Err(OAuthError::new(
                ErrorCode::UnauthorizedClient,
                format!("this client may not use {name}"),
            ));
        }
        let opt = |name: &str| p.get(name).cloned();
        Ok(match grant {
            GrantType::AuthorizationCode => Self::AuthorizationCode(CodeRequest {
                code: needs(p, "code")?,
                redirect_uri: opt("redirect_uri"),
                code_verifier: opt("code_verifier"),
            }),
            GrantType::RefreshToken => Self::RefreshToken(RefreshRequest {
                refresh_token: needs(p, "refresh_token")?,
                scope: opt("scope"),
            }),
            GrantType::ClientCredentials => Self::ClientCredentials(ClientCredentialsRequest {
                scope: opt("scope"),
                resource: opt("resource"),
            }),
        })
    }
}

/// A parameter the grant requires: present and not empty.
fn needs(p: &Params, name: &str) -> Result<String, OAuthError> {
    p.get(name)
        .filter(|v| !v.is_empty())
        .cloned()
        .ok_or_else(|| OAuthError::invalid_request(format!("{name} is missing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::ClientType;

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)], client: &Client) -> OAuthError {
        TokenRequest::parse(&p(pairs), client).unwrap_err()
    }

    #[test]
    fn each_grant_reads_its_own_parameters() {
        let c = crate::testing::client(ClientType::Public);
        let code = TokenRequest::parse(
            &p(&[
                ("grant_type", "authorization_code"),
                ("code", "abc"),
                ("redirect_uri", "https://app/cb"),
                ("scope", "ignored"),
            ]),
            &c,
        );
        assert_eq!(
            code.unwrap(),
            TokenRequest::AuthorizationCode(CodeRequest {
                code: "abc".into(),
                redirect_uri: Some("https://app/cb".into()),
                code_verifier: None,
            })
        );
        let refresh = TokenRequest::parse(
            &p(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", "r"),
                ("scope", "openid"),
            ]),
            &c,
        );
        assert_eq!(
            refresh.unwrap(),
            TokenRequest::RefreshToken(RefreshRequest {
                refresh_token: "r".into(),
                scope: Some("openid".into()),
            })
        );
    }

    #[test]
    fn errors_follow_rfc_6749_section_5_2_in_order() {
        let c = crate::testing::client(ClientType::Public);
        let e = err(&[("code", "abc")], &c);
        assert_eq!(
            (e.code, e.description.as_str()),
            (ErrorCode::InvalidRequest, "grant_type is missing")
        );
        let e = err(&[("grant_type", "password")], &c);
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
        assert_eq!(e.description, "grant_type \"password\" is not supported");
        // The client's permission is checked before the grant's parameters.
        let e = err(&[("grant_type", "client_credentials")], &c);
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
        assert_eq!(e.description, "this client may not use client_credentials");
        let e = err(&[("grant_type", "authorization_code"), ("code", "")], &c);
        assert_eq!(
            (e.code, e.description.as_str()),
            (ErrorCode::InvalidRequest, "code is missing")
        );
        let e = err(&[("grant_type", "refresh_token")], &c);
        assert_eq!(e.description, "refresh_token is missing");
    }
}
