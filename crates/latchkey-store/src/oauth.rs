//! OAuth state: grants, authorization codes, refresh and stateful access tokens, consents.
//!
//! Codes and tokens are stored only as SHA-256 hashes. Spending a code or rotating a refresh
//! token and storing what it issues commit together; the spend is a conditional update, so of
//! any number of concurrent uses exactly one wins, and a use of something already spent revokes
//! the whole grant (every token issued from the same code) in the same transaction.

use crate::db::{Db, from_json, parse_enum, to_json};
use crate::schema::{oauth_codes, oauth_consents, oauth_grants, oauth_tokens};
use crate::{AnyConnection, Result};
use diesel::prelude::*;
use latchkey_core::{ClientId, NewAuditEvent, TenantId, UserId};
use serde_json::json;

/// Tokens kept in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Refresh => "refresh",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "access" => Ok(Self::Access),
            "refresh" => Ok(Self::Refresh),
            other => Err(format!("unknown token kind {other:?}")),
        }
    }
}

/// One authorization of a client by a user, as made at the authorization endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub id: String,
    pub client_id: ClientId,
    pub user_id: UserId,
    /// The session store's key of the browser session the grant came from.
    pub session_key: Option<String>,
    /// Granted scopes, space-separated.
    pub scope: String,
    pub auth_time: i64,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub created_at: i64,
    /// No token of the grant outlives this (the absolute refresh lifetime).
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

/// A code to store with its new grant.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub code_hash: String,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub expires_at: i64,
}

/// A stored code and the grant it belongs to.
#[derive(Debug, Clone)]
pub struct StoredCode {
    pub code_hash: String,
    pub grant: Grant,
    pub redirect_uri: String,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

/// A token to store: `handle` is the SHA-256 of an opaque value or a JWT's `jti`.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub handle: String,
    pub kind: TokenKind,
    pub grant_id: Option<String>,
    pub client_id: ClientId,
    pub user_id: Option<UserId>,
    pub scope: String,
    pub audience: Option<String>,
    pub expires_at: i64,
}

/// A stored token with its grant, if any.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub handle: String,
    pub kind: TokenKind,
    pub client_id: ClientId,
    pub user_id: Option<UserId>,
    pub scope: String,
    pub audience: Option<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub grant: Option<Grant>,
}

impl StoredToken {
    /// Unspent, unrevoked, unexpired, and so is its grant.
    pub fn is_live(&self, now: i64) -> bool {
        self.used_at.is_none()
            && self.revoked_at.is_none()
            && now < self.expires_at
            && self
                .grant
                .as_ref()
                .is_none_or(|g| g.revoked_at.is_none() && now < g.expires_at)
    }
}

/// What spending a code or a refresh token came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spend {
    /// This request spent it; what it issued is stored.
    Spent,
    /// It had been spent before: the grant and its tokens are now revoked.
    Replayed { grant_id: String },
    /// A refresh token rotated moments ago (within the grace window) came back while its
    /// successor is still unused: refused, but nothing is revoked.
    Superseded { grant_id: String },
}

/// What a user allowed a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub client_id: ClientId,
    pub scope: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Which grants to revoke.
#[derive(Debug, Clone, Copy)]
pub enum GrantsOf<'a> {
    /// Every grant of the user.
    User(&'a UserId),
    /// The user's grants to one client.
    UserClient(&'a UserId, &'a ClientId),
    /// Grants made in one browser session, except those with `offline_access`.
    Session(&'a str),
    /// Every grant of every user of the tenant (incident response).
    Tenant,
}

pub trait OAuthRepo {
    /// Stores a new grant and its code, with the audit event, in one transaction.
    fn create_code(&self, t: &TenantId, grant: &Grant, code: &NewCode, event: NewAuditEvent) -> Result<()>;
    fn code(&self, t: &TenantId, code_hash: &str) -> Result<Option<StoredCode>>;
    /// Spends the code and stores `issued`; a code spent before revokes its grant instead.
    fn redeem_code(
        &self,
        t: &TenantId,
        code: &StoredCode,
        issued: &[NewToken],
        event: NewAuditEvent,
    ) -> Result<Spend>;
    fn token(&self, t: &TenantId, handle: &str) -> Result<Option<StoredToken>>;
    /// Spends refresh token `handle` and stores `issued`; a token spent before revokes its grant,
    /// unless it was the last one rotated and that was less than `reuse_grace_ms` ago.
    fn rotate_refresh(
        &self,
        t: &TenantId,
        token: (&str, &str),
        issued: &[NewToken],
        event: NewAuditEvent,
        reuse_grace_ms: i64,
    ) -> Result<Spend>;
    /// Stores tokens that belong to no spend (opaque client-credentials tokens).
    fn store_tokens(&self, t: &TenantId, issued: &[NewToken]) -> Result<()>;
    /// Revokes one token; a refresh token takes its grant along (RFC 7009 §2.1). False when
    /// there was nothing live to revoke.
    fn revoke_token(&self, t: &TenantId, handle: &str, event: NewAuditEvent) -> Result<bool>;
    /// Revokes grants and their tokens; returns how many grants.
    fn revoke_grants(
        &self,
        t: &TenantId,
        which: GrantsOf<'_>,
        reason: &str,
        event: NewAuditEvent,
    ) -> Result<usize>;
    fn consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<Option<Consent>>;
    fn consents(&self, t: &TenantId, user: &UserId) -> Result<Vec<Consent>>;
    /// Records (or widens) what the user allowed the client.
    fn save_consent(&self, t: &TenantId, user: &UserId, client: &ClientId, scope: &str) -> Result<()>;
    /// Withdraws a consent and revokes the grants it allowed.
    fn revoke_consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<bool>;
    /// The user's live grants (neither revoked nor expired), oldest first.
    fn live_grants(&self, t: &TenantId, user: &UserId) -> Result<Vec<Grant>>;
    /// An administrator ends what the user allowed a client (`Some`) or every client: the
    /// consents are withdrawn and the grants revoked with their tokens, offline ones too, in
    /// one transaction audited `oauth.revoke_user_grants`. Returns (consents withdrawn, grants
    /// revoked).
    fn revoke_user_grants(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        client: Option<&ClientId>,
    ) -> Result<(usize, usize)>;
    /// Deletes codes, tokens and grants of any tenant that expired over a day ago.
    fn purge_expired_oauth(&self) -> Result<usize>;
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_grants)]
struct GrantRow {
    id: String,
    client_id: String,
    user_id: String,
    session_key: Option<String>,
    scope: String,
    auth_time: i64,
    acr: Option<String>,
    amr: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

fn grant_from(r: GrantRow) -> Result<Grant> {
    Ok(Grant {
        id: r.id,
        client_id: ClientId(r.client_id),
        user_id: UserId(r.user_id),
        session_key: r.session_key,
        scope: r.scope,
        auth_time: r.auth_time,
        acr: r.acr,
        amr: from_json("oauth_grants.amr", &r.amr)?,
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
    })
}

fn load_grant(c: &mut AnyConnection, t: &TenantId, id: &str) -> Result<Option<Grant>> {
    oauth_grants::table
        .find((t.as_str(), id))
        .select(GrantRow::as_select())
        .first(c)
        .optional()?
        .map(grant_from)
        .transpose()
}

fn insert_tokens(c: &mut AnyConnection, t: &TenantId, now: i64, issued: &[NewToken]) -> Result<()> {
    if issued.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = issued
        .iter()
        .map(|tok| {
            (
                oauth_tokens::tenant_id.eq(t.as_str()),
                oauth_tokens::handle.eq(&tok.handle),
                oauth_tokens::kind.eq(tok.kind.as_str()),
                oauth_tokens::grant_id.eq(&tok.grant_id),
                oauth_tokens::client_id.eq(tok.client_id.as_str()),
                oauth_tokens::user_id.eq(tok.user_id.as_ref().map(UserId::as_str)),
                oauth_tokens::scope.eq(&tok.scope),
                oauth_tokens::audience.eq(&tok.audience),
                oauth_tokens::created_at.eq(now),
                oauth_tokens::expires_at.eq(tok.expires_at),
            )
        })
        .collect();
    match c {
        // One multi-row statement: one round trip for the access and refresh token together.
        AnyConnection::Postgres(pg) => drop(
            diesel::insert_into(oauth_tokens::table)
                .values(&rows)
                .execute(pg)?,
        ),
        // In-process: no round trips to save (and diesel has no batch insert through `AnyConnection`).
        AnyConnection::Sqlite(_) => {
            for row in rows {
                diesel::insert_into(oauth_tokens::table).values(row).execute(c)?;
            }
        }
    }
    Ok(())
}

/// Revokes grant `id` and every token issued from it.
fn revoke_grant(c: &mut AnyConnection, t: &TenantId, id: &str, now: i64, reason: &str) -> Result<bool> {
    let n = diesel::update(
        oauth_grants::table.filter(
            oauth_grants::tenant_id
                .eq(t.as_str())
                .and(oauth_grants::id.eq(id))
                .and(oauth_grants::revoked_at.is_null()),
        ),
    )
    .set((
        oauth_grants::revoked_at.eq(now),
        oauth_grants::revoked_reason.eq(reason),
    ))
    .execute(c)?;
    let tokens = diesel::update(
        oauth_tokens::table.filter(
            oauth_tokens::tenant_id
                .eq(t.as_str())
                .and(oauth_tokens::grant_id.eq(id))
                .and(oauth_tokens::revoked_at.is_null()),
        ),
    )
    .set(oauth_tokens::revoked_at.eq(now))
    .execute(c)?;
    if tokens > 0 {
        crate::revocations::note(t);
    }
    Ok(n > 0)
}

/// Revokes the live grants `which` names, in the caller's transaction; returns how many. A
/// session's grants with `offline_access` are kept (they were meant to outlive it).
pub(crate) fn revoke_matching(
    c: &mut AnyConnection,
    t: &TenantId,
    which: GrantsOf<'_>,
    now: i64,
    reason: &str,
) -> Result<usize> {
    let mut q = oauth_grants::table
        .filter(oauth_grants::tenant_id.eq(t.as_str()))
        .filter(oauth_grants::revoked_at.is_null())
        .select((
            oauth_grants::id,
            oauth_grants::scope,
            oauth_grants::client_id,
            oauth_grants::user_id,
            oauth_grants::session_key,
            oauth_grants::expires_at,
        ))
        .into_boxed();
    q = match which {
        GrantsOf::User(u) => q.filter(oauth_grants::user_id.eq(u.as_str())),
        GrantsOf::UserClient(u, cl) => q
            .filter(oauth_grants::user_id.eq(u.as_str()))
            .filter(oauth_grants::client_id.eq(cl.as_str())),
        GrantsOf::Session(k) => q.filter(oauth_grants::session_key.eq(k)),
        GrantsOf::Tenant => q,
    };
    let keep_offline = matches!(which, GrantsOf::Session(_));
    let grants = q.load::<(String, String, String, String, Option<String>, i64)>(c)?;
    let mut n = 0;
    for (id, scope, ..) in &grants {
        if keep_offline && scope.split(' ').any(|s| s == "offline_access") {
            // It outlives the session, which is gone: later ID tokens carry no `sid`, and a
            // later revocation doesn't tell the client about this session again.
            diesel::update(oauth_grants::table.find((t.as_str(), id)))
                .set(oauth_grants::session_key.eq(None::<String>))
                .execute(c)?;
            continue;
        }
        n += usize::from(revoke_grant(c, t, id, now, reason)?);
    }
    // Back-Channel Logout: the clients that got tokens in the sessions that end are told, kept
    // offline grants included (the client's session ends; its refresh token lives on).
    let live: Vec<_> = grants
        .iter()
        .filter(|g| g.5 > now)
        .map(|(_, _, client, user, key, _)| crate::LogoutNotice {
            client: client.as_str(),
            user: user.as_str(),
            // A withdrawn consent ends no session: the client is told the user is gone from
            // it (`sub` only), never that a session which lives on has ended.
            session_key: if matches!(which, GrantsOf::UserClient(..)) {
                None
            } else {
                key.as_deref()
            },
        })
        .collect();
    crate::resets::queue_backchannel_logouts(c, t, &live, now)?;
    Ok(n)
}

/// Finishes a spend: stores what it issued, or, when the code or token (`what`) had been spent
/// before, revokes its grant and records the reuse instead of `event`. Of many racers that
/// lost, only the one that revoked the grant records it: the others write no audit event, so
/// they never queue for the tenant's audit head (63 losers of a 64-way race did, one after the
/// other, and the last ones ran past their deadline).
fn after_spend(
    c: &mut AnyConnection,
    t: &TenantId,
    won: bool,
    (what, grant_id): (&str, &str),
    now: i64,
    issued: &[NewToken],
    event: &NewAuditEvent,
) -> Result<(Spend, Vec<NewAuditEvent>)> {
    if won {
        insert_tokens(c, t, now, issued)?;
        return Ok((Spend::Spent, vec![event.clone()]));
    }
    let revoked_now = revoke_grant(c, t, grant_id, now, &format!("{what}_reuse"))?;
    let reuse = NewAuditEvent::failure(
        &event.actor,
        &format!("oauth.{what}_reuse"),
        event.target.clone(),
        json!({"grant": grant_id, "revoked": "grant"}),
    );
    Ok((
        Spend::Replayed {
            grant_id: grant_id.to_owned(),
        },
        if revoked_now { vec![reuse] } else { Vec::new() },
    ))
}

/// Whether refresh token `handle` was spent at or after `since`, is not revoked, and no other
/// refresh token of its grant was spent since (its successor is still unused).
fn last_rotated_since(
    c: &mut AnyConnection,
    t: &TenantId,
    (handle, grant_id): (&str, &str),
    since: i64,
) -> Result<bool> {
    let used_at = oauth_tokens::table
        .find((t.as_str(), handle))
        .filter(oauth_tokens::revoked_at.is_null())
        .select(oauth_tokens::used_at)
        .first::<Option<i64>>(c)
        .optional()?
        .flatten();
    let Some(used_at) = used_at.filter(|at| *at >= since) else {
        return Ok(false);
    };
    let later: i64 = oauth_tokens::table
        .filter(oauth_tokens::tenant_id.eq(t.as_str()))
        .filter(oauth_tokens::grant_id.eq(grant_id))
        .filter(oauth_tokens::kind.eq(TokenKind::Refresh.as_str()))
        .filter(oauth_tokens::used_at.ge(used_at))
        .filter(oauth_tokens::handle.ne(handle))
        .count()
        .get_result(c)?;
    Ok(later == 0)
}

/// The answer to a tolerated reuse (see `Spend::Superseded`). Nothing changed, so nothing is
/// audited (racing refreshes would otherwise all queue for the audit head); it is logged.
pub(crate) fn superseded(grant_id: &str) -> (Spend, Vec<NewAuditEvent>) {
    tracing::info!(
        grant = grant_id,
        "rotated refresh token back within the grace window; nothing revoked"
    );
    (
        Spend::Superseded {
            grant_id: grant_id.to_owned(),
        },
        Vec::new(),
    )
}

impl OAuthRepo for Db {
    fn create_code(&self, t: &TenantId, g: &Grant, code: &NewCode, event: NewAuditEvent) -> Result<()> {
        self.audited(t, |c| {
            diesel::insert_into(oauth_grants::table)
                .values((
                    oauth_grants::tenant_id.eq(t.as_str()),
                    oauth_grants::id.eq(&g.id),
                    oauth_grants::client_id.eq(g.client_id.as_str()),
                    oauth_grants::user_id.eq(g.user_id.as_str()),
                    oauth_grants::session_key.eq(&g.session_key),
                    oauth_grants::scope.eq(&g.scope),
                    oauth_grants::auth_time.eq(g.auth_time),
                    oauth_grants::acr.eq(&g.acr),
                    oauth_grants::amr.eq(to_json(&g.amr)),
                    oauth_grants::created_at.eq(g.created_at),
                    oauth_grants::expires_at.eq(g.expires_at),
                ))
                .execute(c)?;
            diesel::insert_into(oauth_codes::table)
                .values((
                    oauth_codes::tenant_id.eq(t.as_str()),
                    oauth_codes::code_hash.eq(&code.code_hash),
                    oauth_codes::grant_id.eq(&g.id),
                    oauth_codes::redirect_uri.eq(&code.redirect_uri),
                    oauth_codes::code_challenge.eq(&code.code_challenge),
                    oauth_codes::nonce.eq(&code.nonce),
                    oauth_codes::created_at.eq(g.created_at),
                    oauth_codes::expires_at.eq(code.expires_at),
                ))
                .execute(c)?;
            Ok(((), event.clone()))
        })
    }

    fn code(&self, t: &TenantId, code_hash: &str) -> Result<Option<StoredCode>> {
        let mut c = self.conn()?;
        let row = oauth_codes::table
            .find((t.as_str(), code_hash))
            .select((
                oauth_codes::grant_id,
                oauth_codes::redirect_uri,
                oauth_codes::code_challenge,
                oauth_codes::nonce,
                oauth_codes::created_at,
                oauth_codes::expires_at,
                oauth_codes::used_at,
            ))
            .first::<(
                String,
                String,
                Option<String>,
                Option<String>,
                i64,
                i64,
                Option<i64>,
            )>(&mut *c)
            .optional()?;
        let Some((grant_id, redirect_uri, code_challenge, nonce, created_at, expires_at, used_at)) = row
        else {
            return Ok(None);
        };
        let Some(grant) = load_grant(&mut c, t, &grant_id)? else {
            return Ok(None);
        };
        Ok(Some(StoredCode {
            code_hash: code_hash.to_owned(),
            grant,
            redirect_uri,
            code_challenge,
            nonce,
            created_at,
            expires_at,
            used_at,
        }))
    }

    fn redeem_code(
        &self,
        t: &TenantId,
        code: &StoredCode,
        issued: &[NewToken],
        event: NewAuditEvent,
    ) -> Result<Spend> {
        let now = self.now();
        let grant_id = &code.grant.id;
        self.audited_all(t, |c| {
            let spent = diesel::update(
                oauth_codes::table.filter(
                    oauth_codes::tenant_id
                        .eq(t.as_str())
                        .and(oauth_codes::code_hash.eq(&code.code_hash))
                        .and(oauth_codes::used_at.is_null()),
                ),
            )
            .set(oauth_codes::used_at.eq(now))
            .execute(c)?;
            after_spend(c, t, spent > 0, ("code", grant_id), now, issued, &event)
        })
    }

    fn token(&self, t: &TenantId, handle: &str) -> Result<Option<StoredToken>> {
        let mut c = self.conn()?;
        #[allow(clippy::type_complexity)]
        let row = oauth_tokens::table
            .find((t.as_str(), handle))
            .select((
                oauth_tokens::kind,
                oauth_tokens::grant_id,
                oauth_tokens::client_id,
                oauth_tokens::user_id,
                oauth_tokens::scope,
                oauth_tokens::audience,
                oauth_tokens::created_at,
                oauth_tokens::expires_at,
                oauth_tokens::used_at,
                oauth_tokens::revoked_at,
            ))
            .first::<(
                String,
                Option<String>,
                String,
                Option<String>,
                String,
                Option<String>,
                i64,
                i64,
                Option<i64>,
                Option<i64>,
            )>(&mut *c)
            .optional()?;
        let Some((
            kind,
            grant_id,
            client_id,
            user_id,
            scope,
            audience,
            created_at,
            expires_at,
            used_at,
            revoked_at,
        )) = row
        else {
            return Ok(None);
        };
        let grant = match grant_id {
            Some(g) => load_grant(&mut c, t, &g)?,
            None => None,
        };
        Ok(Some(StoredToken {
            handle: handle.to_owned(),
            kind: parse_enum("oauth_tokens.kind", &kind)?,
            client_id: ClientId(client_id),
            user_id: user_id.map(UserId),
            scope,
            audience,
            created_at,
            expires_at,
            used_at,
            revoked_at,
            grant,
        }))
    }

    fn rotate_refresh(
        &self,
        t: &TenantId,
        (handle, grant_id): (&str, &str),
        issued: &[NewToken],
        event: NewAuditEvent,
        reuse_grace_ms: i64,
    ) -> Result<Spend> {
        let now = self.now();
        self.audited_all(t, |c| {
            let spent = diesel::update(
                oauth_tokens::table.filter(
                    oauth_tokens::tenant_id
                        .eq(t.as_str())
                        .and(oauth_tokens::handle.eq(handle))
                        .and(oauth_tokens::kind.eq(TokenKind::Refresh.as_str()))
                        .and(oauth_tokens::used_at.is_null())
                        .and(oauth_tokens::revoked_at.is_null()),
                ),
            )
            .set(oauth_tokens::used_at.eq(now))
            .execute(c)?;
            if spent == 0
                && reuse_grace_ms > 0
                && last_rotated_since(c, t, (handle, grant_id), now - reuse_grace_ms)?
            {
                return Ok(superseded(grant_id));
            }
            after_spend(c, t, spent > 0, ("refresh", grant_id), now, issued, &event)
        })
    }

    fn store_tokens(&self, t: &TenantId, issued: &[NewToken]) -> Result<()> {
        let now = self.now();
        self.write(|c| insert_tokens(c, t, now, issued))
    }

    fn revoke_token(&self, t: &TenantId, handle: &str, event: NewAuditEvent) -> Result<bool> {
        let now = self.now();
        self.audited(t, |c| {
            let row = oauth_tokens::table
                .find((t.as_str(), handle))
                .select((
                    oauth_tokens::kind,
                    oauth_tokens::grant_id,
                    oauth_tokens::revoked_at,
                ))
                .first::<(String, Option<String>, Option<i64>)>(c)
                .optional()?;
            let Some((kind, grant_id, revoked_at)) = row else {
                return Ok((false, event.clone()));
            };
            let mut revoked = revoked_at.is_none();
            diesel::update(oauth_tokens::table.find((t.as_str(), handle)))
                .set(oauth_tokens::revoked_at.eq(revoked_at.unwrap_or(now)))
                .execute(c)?;
            if revoked {
                crate::revocations::note(t);
            }
            if kind == TokenKind::Refresh.as_str()
                && let Some(g) = grant_id
            {
                revoked |= revoke_grant(c, t, &g, now, "revoked")?;
            }
            Ok((revoked, event.clone()))
        })
    }

    fn revoke_grants(
        &self,
        t: &TenantId,
        which: GrantsOf<'_>,
        reason: &str,
        event: NewAuditEvent,
    ) -> Result<usize> {
        let now = self.now();
        self.audited(t, |c| {
            let n = revoke_matching(c, t, which, now, reason)?;
            let mut event = event.clone();
            if let Some(o) = event.details.as_object_mut() {
                o.insert("grants_revoked".into(), json!(n));
            }
            Ok((n, event))
        })
    }

    fn consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<Option<Consent>> {
        Ok(oauth_consents::table
            .find((t.as_str(), user.as_str(), client.as_str()))
            .select((
                oauth_consents::client_id,
                oauth_consents::scope,
                oauth_consents::created_at,
                oauth_consents::updated_at,
            ))
            .first::<(String, String, i64, i64)>(&mut *self.conn()?)
            .optional()?
            .map(consent_from))
    }

    fn consents(&self, t: &TenantId, user: &UserId) -> Result<Vec<Consent>> {
        Ok(oauth_consents::table
            .filter(oauth_consents::tenant_id.eq(t.as_str()))
            .filter(oauth_consents::user_id.eq(user.as_str()))
            .order(oauth_consents::created_at.asc())
            .select((
                oauth_consents::client_id,
                oauth_consents::scope,
                oauth_consents::created_at,
                oauth_consents::updated_at,
            ))
            .load::<(String, String, i64, i64)>(&mut *self.conn()?)?
            .into_iter()
            .map(consent_from)
            .collect())
    }

    fn save_consent(&self, t: &TenantId, user: &UserId, client: &ClientId, scope: &str) -> Result<()> {
        let now = self.now();
        self.audited(t, |c| {
            // Concurrent sign-ins of one user consent one at a time: each adds its scope to
            // what the one before wrote, with no duplicate insert and no lost scope.
            crate::db::xact_lock(c, &format!("latchkey-consent:{t}:{user}:{client}"))?;
            let key = (t.as_str(), user.as_str(), client.as_str());
            let existing = oauth_consents::table
                .find(key)
                .select(oauth_consents::scope)
                .first::<String>(c)
                .optional()?;
            let scope = match &existing {
                Some(old) => union(old, scope),
                None => scope.to_owned(),
            };
            if existing.is_some() {
                diesel::update(oauth_consents::table.find(key))
                    .set((
                        oauth_consents::scope.eq(&scope),
                        oauth_consents::updated_at.eq(now),
                    ))
                    .execute(c)?;
            } else {
                diesel::insert_into(oauth_consents::table)
                    .values((
                        oauth_consents::tenant_id.eq(t.as_str()),
                        oauth_consents::user_id.eq(user.as_str()),
                        oauth_consents::client_id.eq(client.as_str()),
                        oauth_consents::scope.eq(&scope),
                        oauth_consents::created_at.eq(now),
                        oauth_consents::updated_at.eq(now),
                    ))
                    .execute(c)?;
            }
            // The consent ledger: what was added to what, under which terms.
            let added: Vec<&str> = match &existing {
                Some(old) => scope
                    .split(' ')
                    .filter(|s| !old.split(' ').any(|o| o == *s))
                    .collect(),
                None => scope.split(' ').collect(),
            };
            let details = json!({
                "client_id": client,
                "scope": scope,
                "added": added.join(" "),
                "change": if existing.is_some() { "changed" } else { "given" },
                "terms_version": crate::terms::accepted_version(c, t, user)?,
            });
            let event = NewAuditEvent::success(
                &format!("user:{user}"),
                "consent.grant",
                format!("client:{client}"),
                details,
            );
            Ok(((), event.clone()))
        })
    }

    fn revoke_consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<bool> {
        let now = self.now();
        self.audited(t, |c| {
            let key = (t.as_str(), user.as_str(), client.as_str());
            let withdrawn = oauth_consents::table
                .find(key)
                .select(oauth_consents::scope)
                .first::<String>(c)
                .optional()?;
            let gone = diesel::delete(oauth_consents::table.find(key)).execute(c)?;
            let grants = revoke_matching(c, t, GrantsOf::UserClient(user, client), now, "consent_revoked")?;
            let details = json!({
                "client_id": client,
                "scope": withdrawn,
                "change": "withdrawn",
                "grants_revoked": grants,
                "terms_version": crate::terms::accepted_version(c, t, user)?,
            });
            let event = NewAuditEvent::success(
                &format!("user:{user}"),
                "consent.revoke",
                format!("client:{client}"),
                details,
            );
            Ok((gone > 0, event))
        })
    }

    fn live_grants(&self, t: &TenantId, user: &UserId) -> Result<Vec<Grant>> {
        let now = self.now();
        oauth_grants::table
            .filter(oauth_grants::tenant_id.eq(t.as_str()))
            .filter(oauth_grants::user_id.eq(user.as_str()))
            .filter(oauth_grants::revoked_at.is_null())
            .filter(oauth_grants::expires_at.gt(now))
            .order((oauth_grants::created_at.asc(), oauth_grants::id.asc()))
            .select(GrantRow::as_select())
            .load(&mut *self.conn()?)?
            .into_iter()
            .map(grant_from)
            .collect()
    }

    fn revoke_user_grants(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        client: Option<&ClientId>,
    ) -> Result<(usize, usize)> {
        let now = self.now();
        self.audited_all(t, |c| {
            let consents = oauth_consents::table
                .filter(oauth_consents::tenant_id.eq(t.as_str()))
                .filter(oauth_consents::user_id.eq(user.as_str()));
            let withdrawn: Vec<(String, String)> = match client {
                Some(cl) => consents
                    .filter(oauth_consents::client_id.eq(cl.as_str()))
                    .into_boxed(),
                None => consents.into_boxed(),
            }
            .select((oauth_consents::client_id, oauth_consents::scope))
            .load(c)?;
            let terms = crate::terms::accepted_version(c, t, user)?;
            let (gone, grants) = match client {
                Some(cl) => (
                    diesel::delete(consents.filter(oauth_consents::client_id.eq(cl.as_str()))).execute(c)?,
                    revoke_matching(c, t, GrantsOf::UserClient(user, cl), now, "admin_revoked")?,
                ),
                None => (
                    diesel::delete(consents).execute(c)?,
                    revoke_matching(c, t, GrantsOf::User(user), now, "admin_revoked")?,
                ),
            };
            let event = NewAuditEvent::success(
                actor,
                "oauth.revoke_user_grants",
                format!("user:{user}"),
                json!({"client": client, "consents_withdrawn": gone, "grants_revoked": grants}),
            );
            // The consent ledger has each withdrawal, whoever made it.
            let mut events = vec![event];
            events.extend(withdrawn.into_iter().map(|(client_id, scope)| {
                let details = json!({
                    "client_id": client_id,
                    "scope": scope,
                    "change": "withdrawn",
                    "terms_version": terms,
                });
                NewAuditEvent::success(actor, "consent.revoke", format!("user:{user}"), details)
            }));
            Ok(((gone, grants), events))
        })
    }

    fn purge_expired_oauth(&self) -> Result<usize> {
        let cutoff = self.now() - 86_400_000;
        self.write(|c| {
            let mut n =
                diesel::delete(oauth_codes::table.filter(oauth_codes::expires_at.lt(cutoff))).execute(c)?;
            n +=
                diesel::delete(oauth_tokens::table.filter(oauth_tokens::expires_at.lt(cutoff))).execute(c)?;
            n +=
                diesel::delete(oauth_grants::table.filter(oauth_grants::expires_at.lt(cutoff))).execute(c)?;
            Ok(n)
        })
    }
}

fn consent_from((client_id, scope, created_at, updated_at): (String, String, i64, i64)) -> Consent {
    Consent {
        client_id: ClientId(client_id),
        scope,
        created_at,
        updated_at,
    }
}

/// The space-separated union of two scope strings, in first-seen order.
fn union(a: &str, b: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for s in a.split(' ').chain(b.split(' ')) {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out.join(" ")
}
