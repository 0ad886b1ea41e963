//! The authorization code grant at the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6): the code
//! is bound to its client, its redirect URI and its PKCE challenge, and lives a minute. It is
//! spent once; a code already spent revokes what its first use issued (RFC 6749 §4.1.2).

use super::issue::{Subject, mint};
use super::{Ctx, GrantError, GrantStore, Signer, TokenResponse, active, event, facts_for};
use crate::OAuthError;
use crate::lifetimes::lifetimes;
use crate::pkce::{CodeChallenge, check_code_verifier};
use crate::token_request::CodeRequest;
use latchkey_core::{Client, GrantType, sha256_hex};
use latchkey_store::{Spend, StoredCode};

/// Redeems a code for tokens: the code is looked up, checked, and spent together with storing
/// what it issues. A failure before the spend (a bad verifier, a signing error) spends nothing.
pub fn exchange(
    store: &dyn GrantStore,
    signer: &dyn Signer,
    ctx: &Ctx<'_>,
    c: &Client,
    req: &CodeRequest,
) -> Result<TokenResponse, GrantError> {
    let t = &ctx.tenant.id;
    let Some(stored) = store.code(t, &sha256_hex(req.code.as_bytes()))? else {
        return Err(OAuthError::invalid_grant("the code is not valid").into());
    };
    if stored.used_at.is_some() {
        // Only the code's own client, proving the PKCE verifier, revokes what it issued: a
        // leaked spent code alone must not let anyone end the user's grant.
        if !presented_by_its_client(&stored, c, req.code_verifier.as_deref()) {
            return Err(OAuthError::invalid_grant("the code is not valid").into());
        }
        store.redeem_code(t, &stored, &[], event(c, "oauth.token", &stored.grant))?;
        return Err(replayed());
    }
    check_code_grant(
        &stored,
        c,
        req.redirect_uri.as_deref(),
        req.code_verifier.as_deref(),
        ctx.clock.now_millis(),
    )?;
    let user = active(store.find_user(t, &stored.grant.user_id)?)?;
    let now = ctx.clock.now_millis();
    let refresh_idle = lifetimes(ctx.tenant, c).refresh_idle_secs * 1000;
    let facts = facts_for(store, c, &user.id, &stored.grant.scope, t)?;
    let who = Subject {
        user: &user,
        grant: &stored.grant,
        nonce: stored.nonce.as_deref(),
        refresh_expires_at: c
            .grant_types
            .contains(&GrantType::RefreshToken)
            .then(|| (now + refresh_idle).min(stored.grant.expires_at)),
        facts: facts.as_ref(),
    };
    let scope_and_audience = (stored.grant.scope.as_str(), c.client_id.as_str());
    let issued = mint(signer, ctx, c, Some(&who), scope_and_audience, now)?;
    match store.redeem_code(t, &stored, &issued.rows, event(c, "oauth.token", &stored.grant))? {
        Spend::Spent => Ok(issued.response),
        Spend::Replayed { .. } | Spend::Superseded { .. } => Err(replayed()),
    }
}

/// The presenter is the client the code was issued to and, where the code carries a PKCE
/// challenge, knows its verifier (RFC 7636 §4.6).
fn presented_by_its_client(code: &StoredCode, client: &Client, code_verifier: Option<&str>) -> bool {
    let challenge = code.code_challenge.as_deref().map(CodeChallenge::from_stored);
    code.grant.client_id == client.client_id && check_code_verifier(challenge.as_ref(), code_verifier).is_ok()
}

fn replayed() -> GrantError {
    GrantError::Replay(OAuthError::invalid_grant(
        "the code was already used; what it issued is revoked",
    ))
}

/// Checks a token request against the code it presents (`now` in milliseconds).
pub fn check_code_grant(
    code: &StoredCode,
    client: &Client,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: i64,
) -> Result<(), OAuthError> {
    if code.grant.client_id != client.client_id {
        return Err(OAuthError::invalid_grant("the code was issued to another client"));
    }
    if now >= code.expires_at {
        return Err(OAuthError::invalid_grant("the code has expired"));
    }
    if code.grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the code's grant was revoked"));
    }
    if redirect_uri != Some(code.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri must be the one of the authorization request",
        ));
    }
    let stored = code.code_challenge.as_deref().map(CodeChallenge::from_stored);
    check_code_verifier(stored.as_ref(), code_verifier)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use latchkey_core::{ClientId, ClientType, UserId};
    use latchkey_store::Grant;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(id: &str) -> Client {
        Client {
            client_id: ClientId(id.into()),
            ..crate::testing::client(ClientType::Public)
        }
    }

    fn code(challenge: Option<&str>) -> StoredCode {
        StoredCode {
            code_hash: "h".into(),
            grant: Grant {
                id: "g".into(),
                client_id: ClientId("c1".into()),
                user_id: UserId("u".into()),
                session_key: None,
                scope: "openid".into(),
                auth_time: 0,
                acr: None,
                amr: vec![],
                created_at: 0,
                expires_at: 1_000_000,
                revoked_at: None,
            },
            redirect_uri: "https://app/cb".into(),
            code_challenge: challenge.map(str::to_owned),
            nonce: None,
            created_at: 0,
            expires_at: 60_000,
            used_at: None,
        }
    }

    /// A request's `redirect_uri` and `code_verifier`.
    type Params<'a> = (Option<&'a str>, Option<&'a str>);

    fn p<'a>(redirect_uri: &'a str, code_verifier: Option<&'a str>) -> Params<'a> {
        (Some(redirect_uri), code_verifier)
    }

    #[test]
    fn binds_client_redirect_pkce_and_time() {
        let good = p("https://app/cb", Some(VERIFIER));
        let c = code(Some(CHALLENGE));
        assert!(check_code_grant(&c, &client("c1"), good.0, good.1, 1_000).is_ok());
        let fails = |code: &StoredCode, cl: &str, params: &Params<'_>, now: i64| {
            check_code_grant(code, &client(cl), params.0, params.1, now)
                .unwrap_err()
                .code
        };
        assert_eq!(fails(&c, "c2", &good, 1_000), ErrorCode::InvalidGrant);
        assert_eq!(fails(&c, "c1", &good, 60_000), ErrorCode::InvalidGrant);
        let other_uri = p("https://app/cb/", Some(VERIFIER));
        assert_eq!(fails(&c, "c1", &other_uri, 1_000), ErrorCode::InvalidGrant);
        let no_verifier = p("https://app/cb", None);
        assert_eq!(fails(&c, "c1", &no_verifier, 1_000), ErrorCode::InvalidGrant);
        let a43 = "a".repeat(43);
        let wrong = p("https://app/cb", Some(&a43));
        assert_eq!(fails(&c, "c1", &wrong, 1_000), ErrorCode::InvalidGrant);
        // A code issued without PKCE can't be redeemed with a verifier, and vice versa.
        let plain = code(None);
        assert_eq!(fails(&plain, "c1", &good, 1_000), ErrorCode::InvalidGrant);
        assert!(check_code_grant(&plain, &client("c1"), no_verifier.0, no_verifier.1, 1_000).is_ok());
        let missing_uri: Params<'_> = (None, None);
        assert_eq!(fails(&plain, "c1", &missing_uri, 1_000), ErrorCode::InvalidGrant);
    }

    mod exchange {
        use super::super::exchange;
        use crate::testing::{FailingSigner, TestSigner, VERIFIER, World, decode};
        use crate::{ErrorCode, GrantError};
        use latchkey_core::{Clock as _, Outcome, UserStatus};
        use latchkey_store::OAuthRepo;

        fn invalid_grant(e: &GrantError) -> bool {
            matches!(e, GrantError::OAuth(o) if o.code == ErrorCode::InvalidGrant)
        }

        #[test]
        fn authorization_code_is_redeemed_once() {
            let w = World::new();
            let code = w.authorize("openid offline_access");
            let req = World::code_request(&code, VERIFIER);
            let first = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap();
            assert!(first.refresh_token.is_some() && first.id_token.is_some());
            assert_eq!(
                (first.token_type, first.scope.as_deref()),
                ("Bearer", Some("openid offline_access"))
            );
            let again = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap_err();
            let GrantError::Replay(e) = again else {
                panic!("{again:?}")
            };
            assert_eq!(e.code, ErrorCode::InvalidGrant);
            assert_eq!(
                w.actions(),
                ["oauth.authorize", "oauth.token", "oauth.code_reuse"]
            );
            let events = w.store.events(&w.tenant.id);
            let grant = w.stored(first.refresh_token.as_deref().unwrap()).grant.unwrap();
            assert_eq!(
                (events[1].actor.as_str(), events[1].target.as_str()),
                ("client:c1", "user:u1")
            );
            assert_eq!(
                events[1].details,
                serde_json::json!({"grant": grant.id, "scope": grant.scope})
            );
            assert_eq!(events[2].outcome, Outcome::Failure);
        }

        #[test]
        fn concurrent_redemptions_give_one_token_response() {
            let w = World::new();
            let code = w.authorize("openid");
            let req = World::code_request(&code, VERIFIER);
            let ok = std::thread::scope(|s| {
                let runs: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).is_ok()))
                    .collect();
                runs.into_iter()
                    .map(|r| r.join().unwrap())
                    .filter(|ok| *ok)
                    .count()
            });
            assert_eq!(ok, 1);
        }

        #[test]
        fn a_replayed_code_revokes_what_it_issued() {
            let w = World::new();
            let code = w.authorize("openid offline_access");
            let req = World::code_request(&code, VERIFIER);
            let first = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap();
            let refresh = first.refresh_token.unwrap();
            let jti = decode(&first.access_token).1["jti"].as_str().unwrap().to_owned();
            let now = w.clock.now_millis();
            assert!(w.stored(&refresh).is_live(now));
            assert!(exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).is_err());
            assert!(
                !w.stored(&refresh).is_live(now),
                "the refresh token died with its grant"
            );
            let access = w.store.token(&w.tenant.id, &jti).unwrap().unwrap();
            assert!(!access.is_live(now), "so did the access token");
        }

        /// Issue 19 item 10: a spent code presented by another client, or without its PKCE
        /// verifier, is refused without revoking the grant it issued.
        #[test]
        fn a_leaked_spent_code_cannot_revoke_the_grant() {
            let w = World::new();
            let code = w.authorize("openid offline_access");
            let req = World::code_request(&code, VERIFIER);
            let first = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap();
            let refresh = first.refresh_token.unwrap();
            let now = w.clock.now_millis();
            let mut other = w.client.clone();
            other.client_id = "c2".into();
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &other, &req).unwrap_err();
            assert!(matches!(e, GrantError::OAuth(_)), "{e:?}");
            let without_verifier = World::code_request(&code, &"a".repeat(43));
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &without_verifier).unwrap_err();
            assert!(matches!(e, GrantError::OAuth(_)), "{e:?}");
            assert!(w.stored(&refresh).is_live(now), "the grant lives on");
            // The code's own client with its verifier still revokes it (RFC 6749 §4.1.2).
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap_err();
            assert!(matches!(e, GrantError::Replay(_)), "{e:?}");
            assert!(!w.stored(&refresh).is_live(now));
        }

        #[test]
        fn pkce_mismatch_is_invalid_grant() {
            let w = World::new();
            let code = w.authorize("openid");
            let wrong = World::code_request(&code, &"a".repeat(43));
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &wrong).unwrap_err();
            assert!(invalid_grant(&e), "{e:?}");
            let mut missing = World::code_request(&code, VERIFIER);
            missing.code_verifier = None;
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &missing).unwrap_err();
            assert!(invalid_grant(&e), "{e:?}");
            // A refused request spends nothing: the right verifier still works.
            let right = World::code_request(&code, VERIFIER);
            assert!(exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &right).is_ok());
        }

        #[test]
        fn unknown_expired_and_foreign_codes_are_invalid_grant() {
            let w = World::new();
            let unknown = World::code_request("nope", VERIFIER);
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &unknown).unwrap_err();
            assert!(invalid_grant(&e), "{e:?}");
            let code = w.authorize("openid");
            let mut other = w.client.clone();
            other.client_id = "c2".into();
            let req = World::code_request(&code, VERIFIER);
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &other, &req).unwrap_err();
            assert!(invalid_grant(&e), "{e:?}");
            w.clock.advance_millis(60_000);
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap_err();
            assert!(invalid_grant(&e), "{e:?}");
        }

        #[test]
        fn a_disabled_user_gets_no_tokens() {
            let w = World::new();
            let code = w.authorize("openid");
            let mut u = crate::testing::user();
            u.status = UserStatus::Disabled;
            w.store.put_user(u);
            let req = World::code_request(&code, VERIFIER);
            let e = exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).unwrap_err();
            let GrantError::OAuth(e) = e else { panic!("{e:?}") };
            assert_eq!(e.description, "the user can no longer sign in");
        }

        #[test]
        fn a_signing_failure_spends_nothing() {
            let w = World::new();
            let code = w.authorize("openid");
            let req = World::code_request(&code, VERIFIER);
            let e = exchange(&w.store, &FailingSigner, &w.ctx(), &w.client, &req).unwrap_err();
            assert!(matches!(e, GrantError::Keys(_)), "{e:?}");
            assert!(exchange(&w.store, &TestSigner, &w.ctx(), &w.client, &req).is_ok());
        }

        #[test]
        fn tokens_carry_the_grant_lifetimes_nonce_and_authentication() {
            let mut w = World::new();
            w.tenant.policy.tokens.access_token_secs = 300;
            w.client.settings.id_token_secs = Some(120);
            w.client.settings.refresh_idle_secs = Some(3_600);
            let t = w.tokens("openid offline_access");
            assert_eq!(t.expires_in, 300);
            let (header, at) = decode(&t.access_token);
            assert_eq!(header["typ"], "at+jwt");
            assert_eq!(header["alg"], "ES256");
            let iat = w.clock.now_millis() / 1000;
            assert_eq!(
                (at["iat"].as_i64(), at["exp"].as_i64()),
                (Some(iat), Some(iat + 300))
            );
            assert_eq!((at["sub"].as_str(), at["aud"].as_str()), (Some("u1"), Some("c1")));
            assert_eq!(at["amr"], serde_json::json!(["pwd"]));
            assert_eq!(at["acr"], latchkey_mfa::acr::PWD);
            let (_, id) = decode(t.id_token.as_deref().unwrap());
            assert_eq!(id["exp"].as_i64(), Some(iat + 120));
            assert_eq!(id["nonce"], "n-1");
            assert_eq!(id["sid"], crate::tokens::sid_of("sess"));
            let at_hash = crate::tokens::at_hash(&t.access_token, latchkey_keys::Alg::RS256);
            assert_eq!(id["at_hash"], at_hash);
            let refresh = w.stored(t.refresh_token.as_deref().unwrap());
            assert_eq!(refresh.expires_at, w.clock.now_millis() + 3_600_000);
        }

        #[test]
        fn id_token_alg_follows_the_client() {
            let mut w = World::new();
            let alg = |t: &crate::TokenResponse| decode(t.id_token.as_deref().unwrap()).0["alg"].clone();
            assert_eq!(alg(&w.tokens("openid")), "RS256");
            w.client.settings.id_token_signed_response_alg = Some("EdDSA".into());
            let t = w.tokens("openid");
            assert_eq!(alg(&t), "EdDSA");
            let (_, id) = decode(t.id_token.as_deref().unwrap());
            assert_eq!(
                id["at_hash"],
                crate::tokens::at_hash(&t.access_token, latchkey_keys::Alg::EdDSA)
            );
            assert_eq!(w.tokens("email").id_token, None, "no openid, no ID token");
        }

        #[test]
        fn a_pairwise_client_is_told_its_own_sub_and_the_store_keeps_the_user() {
            let mut w = World::new();
            w.client.settings.subject_type = latchkey_core::SubjectType::Pairwise;
            let t = w.tokens("openid offline_access");
            let (_, id) = decode(t.id_token.as_deref().unwrap());
            let (_, at) = decode(&t.access_token);
            let salt = latchkey_keys::PairwiseSalt::from_bytes([7; 32]);
            let expected = crate::subject::pairwise(&salt, "app.example.com", "u1");
            assert_eq!(id["sub"], expected.as_str());
            assert_eq!(at["sub"], expected.as_str(), "the access token says the same");
            let row = w
                .store
                .token(&w.tenant.id, at["jti"].as_str().unwrap())
                .unwrap()
                .unwrap();
            assert_eq!(row.user_id.unwrap().as_str(), "u1", "the row keeps the user's id");
            assert_eq!(
                w.stored(t.refresh_token.as_deref().unwrap())
                    .user_id
                    .unwrap()
                    .as_str(),
                "u1"
            );
        }

        #[test]
        fn the_allow_list_holds_against_the_scopes() {
            let mut w = World::new();
            w.client.settings.allowed_claims = Some(vec!["email".into()]);
            let t = w.tokens("openid profile email");
            let (_, id) = decode(t.id_token.as_deref().unwrap());
            assert_eq!(id["email"], "alice@example.com");
            for dropped in ["preferred_username", "updated_at", "email_verified"] {
                assert!(id.get(dropped).is_none(), "{dropped}: {id}");
            }
            for kept in ["sub", "iss", "aud", "nonce", "at_hash", "sid", "auth_time"] {
                assert!(id.get(kept).is_some(), "protocol claim {kept}");
            }
            let (_, at) = decode(&t.access_token);
            assert!(at.get("scope").is_some() && at.get("client_id").is_some());
        }

        #[test]
        fn no_refresh_token_without_the_refresh_grant() {
            let mut w = World::new();
            w.client.grant_types = vec![latchkey_core::GrantType::AuthorizationCode];
            w.client.access_token_format = latchkey_core::AccessTokenFormat::Opaque;
            let t = w.tokens("openid");
            assert_eq!(t.refresh_token, None);
            let access = w.stored(&t.access_token);
            assert_eq!(access.kind, latchkey_store::TokenKind::Access);
        }
    }
}
