//! OpenID Provider metadata (OIDC Discovery 1.0 §3, RFC 8414 §2): what each tenant's issuer
//! supports, built from one place so the document and the endpoints can't drift apart.

use crate::authorize::ResponseMode;
use crate::scope::{EMAIL_CLAIMS, PROFILE_CLAIMS, USER_SCOPES};
use serde_json::{Value, json};

/// Endpoint paths under the issuer.
pub const AUTHORIZE: &str = "/authorize";
pub const TOKEN: &str = "/token";
pub const USERINFO: &str = "/userinfo";
pub const JWKS: &str = "/jwks";
pub const INTROSPECT: &str = "/introspect";
pub const REVOKE: &str = "/revoke";
pub const END_SESSION: &str = "/end-session";

/// Authentication context classes, weakest first (the MFA engine satisfies the stronger ones).
pub const ACR_VALUES: [&str; 3] = [
    "urn:latchkey:acr:pwd",
    "urn:latchkey:acr:mfa",
    "urn:latchkey:acr:phr",
];
pub const AUTH_METHODS: [&str; 4] = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];
/// Methods for the introspection and revocation endpoints: a client must authenticate.
pub const AUTHENTICATED_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "private_key_jwt"];
pub const SIGNING_ALGS: [&str; 3] = ["RS256", "ES256", "EdDSA"];

/// The metadata document of `issuer`.
pub fn metadata(issuer: &str) -> Value {
    let at = |p: &str| format!("{issuer}{p}");
    let mut claims = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "sid",
    ];
    claims.extend(PROFILE_CLAIMS);
    claims.extend(EMAIL_CLAIMS);
    claims.extend(["roles", "groups"]);
    json!({
        "issuer": issuer,
        "authorization_endpoint": at(AUTHORIZE),
        "token_endpoint": at(TOKEN),
        "userinfo_endpoint": at(USERINFO),
        "jwks_uri": at(JWKS),
        "introspection_endpoint": at(INTROSPECT),
        "revocation_endpoint": at(REVOKE),
        "end_session_endpoint": at(END_SESSION),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": true,
        "frontchannel_logout_session_supported": true,
        "scopes_supported": USER_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ResponseMode::SUPPORTED,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "claim_types_supported": ["normal"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "acr_values_supported": ACR_VALUES,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en", "de"],
        "authorization_response_iss_parameter_supported": true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_every_required_field_under_the_issuer() {
        let m = metadata("https://idp.example.com/t/acme");
        for f in [
            "issuer",
            "authorization_endpoint",
            "token_endpoint",
            "jwks_uri",
            "response_types_supported",
            "subject_types_supported",
            "id_token_signing_alg_values_supported",
        ] {
            assert!(m.get(f).is_some(), "{f}");
        }
        for f in ["token_endpoint", "end_session_endpoint", "introspection_endpoint"] {
            assert!(
                m[f].as_str()
                    .unwrap()
                    .starts_with("https://idp.example.com/t/acme/"),
                "{f}"
            );
        }
        for f in [
            "backchannel_logout_supported",
            "backchannel_logout_session_supported",
            "frontchannel_logout_supported",
            "frontchannel_logout_session_supported",
        ] {
            assert_eq!(m[f], json!(true), "{f}");
        }
        assert_eq!(m["response_types_supported"], json!(["code"]));
        assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
        assert!(
            m["id_token_signing_alg_values_supported"]
                .as_array()
                .unwrap()
                .contains(&json!("RS256"))
        );
    }
}
