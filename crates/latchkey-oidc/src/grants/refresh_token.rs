//! The refresh token grant (RFC 6749 §6, RFC 9700 §4.14.2): bound to its client, rotated on
//! every use (the store spends it), scope may only narrow; a rotated token presented again
//! revokes its whole grant, except the token rotated last coming back within the tenant's grace
//! window (a retry, a second tab), which is refused without revoking anything. It runs in steps so the server can read the token and its user in
//! one trip, check the browser session on its async threads, then rotate in a second trip:
//! `find`, `check`, then `rotate` (or `revoke_reused`).

use super::issue::{Subject, mint};
use super::{Ctx, GrantError, GrantStore, Signer, TokenResponse, active, event, facts_for};
use crate::lifetimes::lifetimes;
use crate::token_request::RefreshRequest;
use crate::{OAuthError, scope};
use latchkey_core::{Client, Tenant, TenantId, User, UserId, sha256_hex};
use latchkey_store::{Grant, Spend, StoreError, StoredToken, TokenKind};

/// A presented refresh token and its grant's user, as the store holds them.
#[derive(Debug, Clone)]
pub struct Found {
    handle: String,
    token: Option<StoredToken>,
    user: Option<User>,
}

/// Reads the presented token and its grant's user together.
pub fn find(store: &dyn GrantStore, t: &TenantId, req: &RefreshRequest) -> Result<Found, StoreError> {
    let handle = sha256_hex(req.refresh_token.as_bytes());
    let token = store.token(t, &handle)?;
    let user = match token.as_ref().and_then(|tok| tok.grant.as_ref()) {
        Some(g) => store.find_user(t, &g.user_id)?,
        None => None,
    };
    Ok(Found { handle, token, user })
}

/// Why a refresh is refused, with what the caller must do about it first.
#[derive(Debug)]
pub enum Refused {
    /// Answer with this error.
    Invalid(OAuthError),
    /// A rotated token came back, so it leaked (RFC 9700 §4.14.2): `revoke_reused`, then answer
    /// with `reused()`.
    Reused(Box<Reuse>),
    /// The grant's user can no longer sign in: revoke the user's grants, then answer `error`.
    UserInactive { user_id: UserId, error: OAuthError },
}

/// A spent refresh token presented again.
#[derive(Debug, Clone)]
pub struct Reuse {
    handle: String,
    grant: Grant,
}

/// A refresh that passed every check and may rotate.
#[derive(Debug, Clone)]
pub struct Rotation {
    handle: String,
    grant: Grant,
    user: User,
    scope: String,
}

impl Rotation {
    pub fn user(&self) -> &User {
        &self.user
    }

    /// The browser session the grant lives with, which must still be live; `None` when the
    /// grant has `offline_access` (OIDC Core §11) or came from no session.
    pub fn session_key(&self) -> Option<&str> {
        if scope::contains(&self.grant.scope, scope::OFFLINE_ACCESS) {
            return None;
        }
        self.grant.session_key.as_deref()
    }
}

/// Decides a presented refresh token (`now` in milliseconds).
pub fn check(p: Found, c: &Client, req: &RefreshRequest, now: i64) -> Result<Rotation, Refused> {
    let not_valid = || Refused::Invalid(OAuthError::invalid_grant("the refresh token is not valid"));
    let Some(tok) = p.token else {
        return Err(not_valid());
    };
    let Some(grant) = tok.grant.clone() else {
        return Err(not_valid());
    };
    if tok.kind == TokenKind::Refresh && tok.used_at.is_some() && tok.client_id == c.client_id {
        return Err(Refused::Reused(Box::new(Reuse {
            handle: p.handle,
            grant,
        })));
    }
    let scope = check_refresh_grant(&tok, c, req.scope.as_deref(), now).map_err(Refused::Invalid)?;
    let user = active(p.user).map_err(|error| Refused::UserInactive {
        user_id: grant.user_id.clone(),
        error,
    })?;
    Ok(Rotation {
        handle: p.handle,
        grant,
        user,
        scope,
    })
}

/// Answers a reused token: revokes its grant and every token it issued, with the reuse audit
/// event, unless it is the one rotated last and that was within the tenant's grace window.
/// Returns the error for the client and whether the grant was revoked.
pub fn revoke_reused(
    store: &dyn GrantStore,
    tenant: &Tenant,
    c: &Client,
    r: &Reuse,
) -> Result<(OAuthError, bool), StoreError> {
    let ev = event(c, "oauth.refresh", &r.grant);
    let grace = lifetimes(tenant, c).refresh_reuse_grace_secs * 1000;
    Ok(
        match store.rotate_refresh(&tenant.id, (&r.handle, &r.grant.id), &[], ev, grace)? {
            Spend::Superseded { .. } => (superseded(), false),
            Spend::Spent | Spend::Replayed { .. } => (reused(), true),
        },
    )
}

/// The answer to a reused refresh token.
pub fn reused() -> OAuthError {
    OAuthError::invalid_grant("the refresh token was already used; its grant is revoked")
}

/// The answer to the token rotated last, back within the grace window: the grant lives on.
pub fn superseded() -> OAuthError {
    OAuthError::invalid_grant("the refresh token was already rotated; use the one issued in its place")
}

/// Spends the token and stores its successors: a new refresh token (idle lifetime, never past
/// the grant's end) and new access and ID tokens. Of concurrent rotations one wins; the others
/// find it spent, which revokes the grant unless they come within the grace window.
pub fn rotate(
    store: &dyn GrantStore,
    signer: &dyn Signer,
    ctx: &Ctx<'_>,
    c: &Client,
    r: &Rotation,
) -> Result<TokenResponse, GrantError> {
    let now = ctx.clock.now_millis();
    let refresh_idle = lifetimes(ctx.tenant, c).refresh_idle_secs * 1000;
    let facts = facts_for(store, c, &r.user.id, &r.scope, &ctx.tenant.id)?;
    let who = Subject {
        user: &r.user,
        grant: &r.grant,
        nonce: None,
        refresh_expires_at: Some((now + refresh_idle).min(r.grant.expires_at)),
        facts: facts.as_ref(),
    };
    let issued = mint(signer, ctx, c, Some(&who), (&r.scope, c.client_id.as_str()), now)?;
    let ev = event(c, "oauth.refresh", &r.grant);
    let grace = lifetimes(ctx.tenant, c).refresh_reuse_grace_secs * 1000;
    match store.rotate_refresh(&ctx.tenant.id, (&r.handle, &r.grant.id), &issued.rows, ev, grace)? {
        Spend::Spent => Ok(issued.response),
        Spend::Replayed { .. } => Err(GrantError::Replay(reused())),
        Spend::Superseded { .. } => Err(GrantError::OAuth(superseded())),
    }
}

/// The scope the new tokens get; `now` in milliseconds. A token already spent is left for the
/// store to detect (and revoke its family), so it is not refused here.
pub fn check_refresh_grant(
    token: &StoredToken,
    client: &Client,
    requested_scope: Option<&str>,
    now: i64,
) -> Result<String, OAuthError> {
    if token.kind != TokenKind::Refresh || token.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token is not valid for this client",
        ));
    }
    let grant = token
        .grant
        .as_ref()
        .ok_or_else(|| OAuthError::invalid_grant("the refresh token has no grant"))?;
    if token.revoked_at.is_some() || grant.revoked_at.is_some() {
        return Err(OAuthError::invalid_grant("the refresh token was revoked"));
    }
    if now >= token.expires_at || now >= grant.expires_at {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    match requested_scope.filter(|s| !s.is_empty()) {
        None => Ok(token.scope.clone()),
        Some(req) => {
            let asked = scope::parse(Some(req))?;
            let asked = scope::join(&asked);
            if scope::is_subset(&asked, &token.scope) {
                Ok(asked)
            } else {
                Err(OAuthError::invalid_scope(
                    "a refresh may only narrow the granted scope",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;
    use latchkey_core::{ClientId, ClientType, UserId};
    use latchkey_store::Grant;

    fn client(id: &str) -> Client {
        Client {
            client_id: ClientId(id.into()),
            ..crate::testing::client(ClientType::Public)
        }
    }

    fn token() -> StoredToken {
        StoredToken {
            handle: "h".into(),
            kind: TokenKind::Refresh,
            client_id: ClientId("c1".into()),
            user_id: Some(UserId("u".into())),
            scope: "openid email offline_access".into(),
            audience: None,
            created_at: 0,
            expires_at: 10_000,
            used_at: None,
            revoked_at: None,
            grant: Some(Grant {
                id: "g".into(),
                client_id: ClientId("c1".into()),
                user_id: UserId("u".into()),
                session_key: None,
                scope: "openid email offline_access".into(),
                auth_time: 0,
                acr: None,
                amr: vec![],
                created_at: 0,
                expires_at: 20_000,
                revoked_at: None,
            }),
        }
    }

    #[test]
    fn narrows_never_widens_and_stays_with_its_client() {
        let t = token();
        assert_eq!(check_refresh_grant(&t, &client("c1"), None, 5).unwrap(), t.scope);
        assert_eq!(
            check_refresh_grant(&t, &client("c1"), Some("email openid"), 5).unwrap(),
            "email openid"
        );
        let e = check_refresh_grant(&t, &client("c1"), Some("openid profile"), 5).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
        let e = check_refresh_grant(&t, &client("c2"), None, 5).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(check_refresh_grant(&t, &client("c1"), None, 10_000).is_err());
        let mut revoked = token();
        revoked.grant.as_mut().unwrap().revoked_at = Some(1);
        assert!(check_refresh_grant(&revoked, &client("c1"), None, 5).is_err());
    }

    mod steps {
        use super::super::{Refused, check, find, revoke_reused, rotate};
        use crate::testing::{TestSigner, World};
        use crate::token_request::RefreshRequest;
        use crate::{ErrorCode, GrantError, TokenResponse};
        use latchkey_core::{Clock as _, Outcome, UserStatus};

        fn req(refresh_token: &str, scope: Option<&str>) -> RefreshRequest {
            RefreshRequest {
                refresh_token: refresh_token.into(),
                scope: scope.map(str::to_owned),
            }
        }

        /// All the steps, as the server runs them (the session check aside).
        fn refresh(w: &World, r: &RefreshRequest) -> Result<TokenResponse, GrantError> {
            let found = find(&w.store, &w.tenant.id, r).unwrap();
            match check(found, &w.client, r, w.clock.now_millis()) {
                Ok(rotation) => rotate(&w.store, &TestSigner, &w.ctx(), &w.client, &rotation),
                Err(Refused::Reused(reuse)) => {
                    let (error, revoked) = revoke_reused(&w.store, &w.tenant, &w.client, &reuse).unwrap();
                    Err(if revoked {
                        GrantError::Replay(error)
                    } else {
                        GrantError::OAuth(error)
                    })
                }
                Err(Refused::Invalid(e) | Refused::UserInactive { error: e, .. }) => Err(e.into()),
            }
        }

        #[test]
        fn refresh_rotation_issues_a_new_token_and_spends_the_old() {
            let w = World::new();
            let first = w.tokens("openid offline_access");
            let old = first.refresh_token.unwrap();
            w.clock.advance_millis(1_000);
            let next = refresh(&w, &req(&old, None)).unwrap();
            let new = next.refresh_token.unwrap();
            assert_ne!(new, old);
            assert!(next.id_token.is_some());
            assert_eq!(next.scope.as_deref(), Some("openid offline_access"));
            let now = w.clock.now_millis();
            assert_eq!(w.stored(&old).used_at, Some(now));
            assert!(w.stored(&new).is_live(now));
            assert_eq!(w.stored(&new).expires_at, now + 30 * 86_400_000);
            let last = w.store.events(&w.tenant.id).pop().unwrap();
            assert_eq!(
                (last.action.as_str(), last.target.as_str()),
                ("oauth.refresh", "user:u1")
            );
        }

        #[test]
        fn refresh_reuse_revokes_the_family() {
            let w = World::new();
            let old = w.tokens("openid offline_access").refresh_token.unwrap();
            let new = refresh(&w, &req(&old, None)).unwrap().refresh_token.unwrap();
            // Past the grace window (10 s by default) a rotated token back is reuse.
            w.clock.advance_millis(10_001);
            let e = refresh(&w, &req(&old, None)).unwrap_err();
            assert!(
                matches!(&e, GrantError::Replay(o) if o.code == ErrorCode::InvalidGrant),
                "{e:?}"
            );
            assert!(
                !w.stored(&new).is_live(w.clock.now_millis()),
                "the successor is revoked"
            );
            let e = refresh(&w, &req(&new, None)).unwrap_err();
            assert!(
                matches!(&e, GrantError::OAuth(o) if o.code == ErrorCode::InvalidGrant),
                "{e:?}"
            );
            let reuse = w
                .store
                .events(&w.tenant.id)
                .into_iter()
                .find(|e| e.action == "oauth.refresh_reuse");
            assert_eq!(reuse.map(|e| e.outcome), Some(Outcome::Failure));
        }

        #[test]
        fn the_token_rotated_last_back_within_the_grace_window_revokes_nothing() {
            let w = World::new();
            let old = w.tokens("openid offline_access").refresh_token.unwrap();
            let new = refresh(&w, &req(&old, None)).unwrap().refresh_token.unwrap();
            w.clock.advance_millis(9_000);
            let e = refresh(&w, &req(&old, None)).unwrap_err();
            assert!(
                matches!(&e, GrantError::OAuth(o) if o.code == ErrorCode::InvalidGrant
                    && o.description.contains("rotated")),
                "{e:?}"
            );
            assert!(
                w.stored(&new).is_live(w.clock.now_millis()),
                "the successor lives on"
            );
            assert!(
                !w.store
                    .events(&w.tenant.id)
                    .iter()
                    .any(|e| e.action == "oauth.refresh_reuse"),
                "no reuse is recorded"
            );
            // Once the successor has been used, the old token is two rotations back: reuse.
            let newest = refresh(&w, &req(&new, None)).unwrap().refresh_token.unwrap();
            let e = refresh(&w, &req(&old, None)).unwrap_err();
            assert!(matches!(e, GrantError::Replay(_)), "{e:?}");
            assert!(!w.stored(&newest).is_live(w.clock.now_millis()));
        }

        #[test]
        fn with_no_grace_window_a_rotated_token_back_is_reuse_at_once() {
            let mut w = World::new();
            w.tenant.policy.tokens.refresh_reuse_grace_secs = 0;
            let old = w.tokens("openid offline_access").refresh_token.unwrap();
            let new = refresh(&w, &req(&old, None)).unwrap().refresh_token.unwrap();
            let e = refresh(&w, &req(&old, None)).unwrap_err();
            assert!(matches!(e, GrantError::Replay(_)), "{e:?}");
            assert!(!w.stored(&new).is_live(w.clock.now_millis()));
        }

        #[test]
        fn of_two_concurrent_rotations_one_wins_and_the_other_leaves_it_alone() {
            let w = World::new();
            let old = w.tokens("openid offline_access").refresh_token.unwrap();
            let r = req(&old, None);
            let found = find(&w.store, &w.tenant.id, &r).unwrap();
            let rotation = check(found, &w.client, &r, w.clock.now_millis()).unwrap();
            let won = rotate(&w.store, &TestSigner, &w.ctx(), &w.client, &rotation).unwrap();
            let lost = rotate(&w.store, &TestSigner, &w.ctx(), &w.client, &rotation).unwrap_err();
            assert!(matches!(lost, GrantError::OAuth(_)), "{lost:?}");
            let winner = won.refresh_token.unwrap();
            assert!(
                w.stored(&winner).is_live(w.clock.now_millis()),
                "the winner keeps its token"
            );
        }

        #[test]
        fn refresh_scope_only_narrows() {
            let w = World::new();
            let old = w.tokens("openid email offline_access").refresh_token.unwrap();
            let e = refresh(&w, &req(&old, Some("openid profile"))).unwrap_err();
            assert!(
                matches!(&e, GrantError::OAuth(o) if o.code == ErrorCode::InvalidScope),
                "{e:?}"
            );
            let narrowed = refresh(&w, &req(&old, Some("email"))).unwrap();
            assert_eq!(narrowed.scope.as_deref(), Some("email"));
            assert_eq!(narrowed.id_token, None, "without openid there is no ID token");
        }

        #[test]
        fn a_refresh_token_is_bound_to_its_client_and_its_user() {
            let mut w = World::new();
            let rt = w.tokens("openid offline_access").refresh_token.unwrap();
            let r = req(&rt, None);
            w.client.client_id = "c2".into();
            let found = find(&w.store, &w.tenant.id, &r).unwrap();
            let refused = check(found, &w.client, &r, w.clock.now_millis()).unwrap_err();
            assert!(matches!(refused, Refused::Invalid(ref o) if o.code == ErrorCode::InvalidGrant));
            w.client.client_id = "c1".into();
            let mut u = crate::testing::user();
            u.status = UserStatus::Disabled;
            w.store.put_user(u);
            let found = find(&w.store, &w.tenant.id, &r).unwrap();
            match check(found, &w.client, &r, w.clock.now_millis()) {
                Err(Refused::UserInactive { user_id, error }) => {
                    assert_eq!(user_id.as_str(), "u1");
                    assert_eq!(error.description, "the user can no longer sign in");
                }
                other => panic!("{other:?}"),
            }
            let unknown = req("nope", None);
            let found = find(&w.store, &w.tenant.id, &unknown).unwrap();
            let refused = check(found, &w.client, &unknown, w.clock.now_millis()).unwrap_err();
            assert!(matches!(refused, Refused::Invalid(_)));
        }

        #[test]
        fn only_online_grants_need_their_session() {
            let w = World::new();
            for (scope, session) in [("openid", Some("sess")), ("openid offline_access", None)] {
                let rt = w.tokens(scope).refresh_token.unwrap();
                let r = req(&rt, None);
                let found = find(&w.store, &w.tenant.id, &r).unwrap();
                let rotation = check(found, &w.client, &r, w.clock.now_millis()).unwrap();
                assert_eq!(rotation.session_key(), session, "{scope}");
                assert_eq!(rotation.user().id.as_str(), "u1");
            }
        }
    }
}
