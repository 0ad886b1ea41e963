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

/// OIDC Core §2: the claims of the ID token that say who issued it, to whom, when and about
/// which sign-in; userinfo carries `sub` of them.
pub const ID_TOKEN_CLAIMS: [&str; 13] = [
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
];
/// What the `roles` scope writes: `roles`, or in Keycloak's shape `realm_access` and
/// `resource_access`; and the `groups` scope's `groups`.
pub const AUTHORIZATION_CLAIMS: [&str; 4] = ["roles", "realm_access", "resource_access", "groups"];

/// `claims_supported`: exactly the claims Latchkey releases into ID tokens and userinfo. A
/// client's own mappers add claims of their own names; those are the client's, not the
/// issuer's, and are not listed (docs/oidc.md#which-claims-each-scope-releases).
pub fn claims_supported() -> Vec<&'static str> {
    let mut claims = ID_TOKEN_CLAIMS.to_vec();
    claims.extend(PROFILE_CLAIMS);
    claims.extend(EMAIL_CLAIMS);
    claims.extend(AUTHORIZATION_CLAIMS);
    claims
}

/// The metadata document of `issuer`.
pub fn metadata(issuer: &str) -> Value {
    let at = |p: &str| format!("{issuer}{p}");
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
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": SIGNING_ALGS,
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTHENTICATED_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims_supported(),
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
    use crate::claims::{ClaimFacts, release};
    use crate::tokens::{Authentication, Envelope, id_token_claims};
    use latchkey_core::claims::RolesFormat;
    use latchkey_core::{ClaimsConfig, EffectiveAccess, EffectiveGroup, TokenTarget};
    use std::collections::BTreeSet;

    /// Every claim an ID token can carry with every built-in scope, in both shapes of `roles`.
    fn released_claims() -> BTreeSet<String> {
        let mut user = crate::testing::user();
        user.display_name = Some("Alice".into());
        let amr = vec!["pwd".to_owned()];
        let a = Authentication {
            user: &user,
            sub: "u1",
            auth_time: 1,
            acr: Some("urn:latchkey:acr:pwd"),
            amr: &amr,
        };
        let env = Envelope {
            issuer: "https://idp.example.com/t/acme",
            client_id: "c1",
            iat: 1,
            exp: 2,
            jti: "j",
        };
        let scope = USER_SCOPES.join(" ");
        let mut out = BTreeSet::new();
        let id = id_token_claims(&env, &a, &scope, Some("n"), Some("s"), Some("h"));
        out.extend(id.as_object().unwrap().keys().cloned());
        let facts = ClaimFacts {
            access: EffectiveAccess {
                roles: vec!["r".into()],
                groups: vec![EffectiveGroup {
                    name: "g".into(),
                    path: "/g".into(),
                }],
                ..EffectiveAccess::default()
            },
            ..ClaimFacts::default()
        };
        for format in [RolesFormat::Flat, RolesFormat::Keycloak] {
            let mut cfg = ClaimsConfig::default();
            cfg.roles.format = format;
            let m = release(&cfg, "c1", &scope, Some(&facts), TokenTarget::IdToken);
            out.extend(m.keys().cloned());
        }
        out
    }

    #[test]
    fn claims_supported_is_exactly_what_tokens_release() {
        let listed: BTreeSet<String> = claims_supported().iter().map(|c| (*c).to_owned()).collect();
        assert_eq!(listed.len(), claims_supported().len(), "each once");
        assert_eq!(listed, released_claims());
    }

    #[test]
    fn pairwise_subjects_are_offered() {
        let m = metadata("https://idp.example.com/t/acme");
        assert_eq!(m["subject_types_supported"], json!(["public", "pairwise"]));
    }

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
