//! Minting the tokens of one token response (RFC 6749 §5.1): the access token (an RFC 9068 JWT
//! or an opaque value), the ID token when `openid` was granted (OIDC Core §3.1.3.3), and a
//! refresh token when the grant allows one. Codes, refresh tokens and opaque access tokens are
//! kept as SHA-256 hashes; a user's JWT access token is kept by its `jti` so it can be revoked.

use super::{Ctx, Signer};
use crate::claims::{ClaimFacts, minimise, release};
use crate::lifetimes::lifetimes;
use crate::scope;
use crate::subject::subject_for;
use crate::tokens::{
    AT_JWT, Authentication, Envelope, access_token_claims, at_hash, id_token_alg, id_token_claims, sid_of,
};
use latchkey_core::{AccessTokenFormat, Client, TokenTarget, User, random_token, sha256_hex};
use latchkey_keys::{Alg, KeyError};
use latchkey_store::{Grant, NewToken, TokenKind};
use serde::Serialize;

/// RFC 6749 §5.1 (with OIDC Core §3.1.3.3 `id_token`). Fields in name order, as before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    /// Seconds.
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub token_type: &'static str,
}

/// The tokens of one response and the rows to store for them.
#[derive(Debug, Clone)]
pub struct Issued {
    pub response: TokenResponse,
    pub rows: Vec<NewToken>,
}

/// Who a user token speaks for.
pub(crate) struct Subject<'a> {
    pub user: &'a User,
    pub grant: &'a Grant,
    pub nonce: Option<&'a str>,
    /// Milliseconds; `None`: no refresh token.
    pub refresh_expires_at: Option<i64>,
    /// The user's roles, groups and attributes, when the scope releases any.
    pub facts: Option<&'a ClaimFacts>,
}

/// Adds the client's authorization claims for `target` (registered claims already there win),
/// then caps the whole by the client's allow-list: the one place a token's claims are released.
fn with_authorization(
    mut claims: serde_json::Value,
    c: &Client,
    scope: &str,
    facts: Option<&ClaimFacts>,
    target: TokenTarget,
) -> serde_json::Value {
    if let serde_json::Value::Object(m) = &mut claims {
        for (k, v) in release(&c.settings.claims, c.client_id.as_str(), scope, facts, target) {
            m.entry(k).or_insert(v);
        }
        minimise(m, c.settings.allowed_claims.as_deref());
    }
    claims
}

/// What client `c` would get for `user` with `scope` now, unsigned: the ID token's claims, a
/// JWT access token's, and userinfo's, with the client's authorization claims from `facts`.
/// The admin console's "this is the ID token a portal gets" preview; it mints nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Preview {
    pub id_token: serde_json::Value,
    pub access_token: serde_json::Value,
    pub userinfo: serde_json::Value,
}

/// [`Preview`] of a sign-in by `user` (known to the client as `sub`, `subject::subject_for`;
/// with `amr`) at `now_ms` (milliseconds); without a user, what the client gets acting for
/// itself (an access token only; the others are `null`).
pub fn preview(
    (issuer, tenant): (&str, &latchkey_core::Tenant),
    c: &Client,
    who: Option<(&User, &str, &[String])>,
    (scope, audience): (&str, &str),
    facts: Option<&ClaimFacts>,
    now_ms: i64,
) -> Preview {
    let life = lifetimes(tenant, c);
    let now = now_ms / 1000;
    let env = Envelope {
        issuer,
        client_id: c.client_id.as_str(),
        iat: now,
        exp: now + life.access_secs,
        jti: "preview",
    };
    let Some((user, sub, amr)) = who else {
        let at = access_token_claims(&env, audience, scope, None);
        return Preview {
            id_token: serde_json::Value::Null,
            access_token: with_authorization(at, c, scope, None, TokenTarget::AccessToken),
            userinfo: serde_json::Value::Null,
        };
    };
    let acr = crate::tokens::acr_of(amr);
    let a = Authentication {
        user,
        sub,
        auth_time: now,
        acr: acr.as_deref(),
        amr,
    };
    let id_env = Envelope {
        exp: now + life.id_secs,
        ..env.clone()
    };
    let id = id_token_claims(&id_env, &a, scope, None, None, None);
    let at = access_token_claims(&env, audience, scope, Some(&a));
    let mut info = serde_json::Value::Object(scope::user_claims(user, scope));
    info["sub"] = serde_json::json!(sub);
    Preview {
        id_token: with_authorization(id, c, scope, facts, TokenTarget::IdToken),
        access_token: with_authorization(at, c, scope, facts, TokenTarget::AccessToken),
        userinfo: with_authorization(info, c, scope, facts, TokenTarget::Userinfo),
    }
}

/// OIDC Core §3.1.3.6: the ID token, with its own `jti`, the session's `sid` and `at_hash`.
fn id_token(
    signer: &dyn Signer,
    ctx: &Ctx<'_>,
    c: &Client,
    (w, a): (&Subject<'_>, &Authentication<'_>),
    env: &Envelope<'_>,
    scope: &str,
    access_token: &str,
) -> Result<String, KeyError> {
    let alg = id_token_alg(c);
    let id_jti = random_token(ctx.rng, 16);
    let env = Envelope {
        jti: &id_jti,
        ..env.clone()
    };
    let sid = w.grant.session_key.as_deref().map(sid_of);
    let hash = at_hash(access_token, alg);
    let claims = with_authorization(
        id_token_claims(&env, a, scope, w.nonce, sid.as_deref(), Some(&hash)),
        c,
        scope,
        w.facts,
        TokenTarget::IdToken,
    );
    signer.sign(&ctx.tenant.id, alg, "JWT", &claims)
}

/// How `w`'s user signed in, known to the client as `sub` (OIDC Core §8: their id or its
/// pairwise value; the stored rows keep the id).
fn authentication<'a>(w: &Subject<'a>, sub: &'a str) -> Authentication<'a> {
    Authentication {
        user: w.user,
        sub,
        auth_time: w.grant.auth_time / 1000,
        acr: w.grant.acr.as_deref(),
        amr: &w.grant.amr,
    }
}

/// Signs and assembles the tokens of one response at `now_ms`; `who` is `None` for a client
/// acting for itself. Stores nothing: the caller stores `rows` with the spend they belong to.
pub(crate) fn mint(
    signer: &dyn Signer,
    ctx: &Ctx<'_>,
    c: &Client,
    who: Option<&Subject<'_>>,
    (scope, audience): (&str, &str),
    now_ms: i64,
) -> Result<Issued, KeyError> {
    let life = lifetimes(ctx.tenant, c);
    let now = now_ms / 1000;
    let jti = random_token(ctx.rng, 16);
    let env = Envelope {
        issuer: ctx.issuer,
        client_id: c.client_id.as_str(),
        iat: now,
        exp: now + life.access_secs,
        jti: &jti,
    };
    let sub = who
        .map(|w| subject_for(c, w.user.id.as_str(), || signer.pairwise_salt(&ctx.tenant.id)))
        .transpose()?;
    let authn = who.zip(sub.as_deref()).map(|(w, sub)| authentication(w, sub));
    let sign =
        |alg: Alg, typ: &str, claims: &serde_json::Value| signer.sign(&ctx.tenant.id, alg, typ, claims);
    let row = |handle: String, kind: TokenKind, expires_at: i64| NewToken {
        handle,
        kind,
        grant_id: who.map(|w| w.grant.id.clone()),
        client_id: c.client_id.clone(),
        user_id: who.map(|w| w.user.id.clone()),
        scope: scope.to_owned(),
        audience: Some(audience.to_owned()),
        expires_at,
    };
    let mut rows = Vec::new();
    let access_token = match c.access_token_format {
        AccessTokenFormat::Jwt => {
            let claims = with_authorization(
                access_token_claims(&env, audience, scope, authn.as_ref()),
                c,
                scope,
                who.and_then(|w| w.facts),
                TokenTarget::AccessToken,
            );
            let token = sign(Alg::ES256, AT_JWT, &claims)?;
            if who.is_some() {
                rows.push(row(jti.clone(), TokenKind::Access, env.exp * 1000));
            }
            token
        }
        AccessTokenFormat::Opaque => {
            let token = random_token(ctx.rng, 32);
            rows.push(row(
                sha256_hex(token.as_bytes()),
                TokenKind::Access,
                env.exp * 1000,
            ));
            token
        }
    };
    let id_token = match (who, authn.as_ref()) {
        (Some(w), Some(a)) if scope::contains(scope, scope::OPENID) => {
            let id_env = Envelope {
                exp: now + life.id_secs,
                ..env.clone()
            };
            Some(id_token(signer, ctx, c, (w, a), &id_env, scope, &access_token)?)
        }
        _ => None,
    };
    let refresh_token = who.and_then(|w| w.refresh_expires_at).map(|exp| {
        let refresh = random_token(ctx.rng, 32);
        rows.push(row(sha256_hex(refresh.as_bytes()), TokenKind::Refresh, exp));
        refresh
    });
    let response = TokenResponse {
        access_token,
        expires_in: life.access_secs,
        id_token,
        refresh_token,
        scope: (!scope.is_empty()).then(|| scope.to_owned()),
        token_type: "Bearer",
    };
    Ok(Issued { response, rows })
}
