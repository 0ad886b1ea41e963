//! An in-memory `OAuthRepo` with the database's semantics, for tests of the grants and as the
//! third backend of the OAuth store contract suite. One mutex stands for the database
//! transaction: a spend and what it issues happen together, of concurrent spends exactly one
//! wins, and a spend of something already spent revokes its grant. Audit events are kept in a
//! list instead of a hash chain. Users are added directly, for the grants' `UserLookup`.

use crate::claims::ClaimFacts;
use crate::grants::UserLookup;
use latchkey_core::{ClientId, Clock, NewAuditEvent, TenantId, User, UserId};
use latchkey_store::{
    Consent, Grant, GrantsOf, NewCode, NewToken, OAuthRepo, Spend, StoreError, StoredCode, StoredToken,
    TokenKind,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

type Result<T> = std::result::Result<T, StoreError>;
/// A row's key: its tenant and its id (grant id, code hash or token handle).
type Key = (TenantId, String);

#[derive(Debug, Clone)]
struct CodeRow {
    grant_id: String,
    code: NewCode,
    created_at: i64,
    used_at: Option<i64>,
}

#[derive(Debug, Clone)]
struct TokenRow {
    token: NewToken,
    created_at: i64,
    used_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(Debug, Default)]
struct State {
    grants: BTreeMap<Key, Grant>,
    codes: BTreeMap<Key, CodeRow>,
    tokens: BTreeMap<Key, TokenRow>,
    consents: BTreeMap<(TenantId, UserId, ClientId), Consent>,
    users: BTreeMap<(TenantId, UserId), User>,
    facts: BTreeMap<(TenantId, UserId), ClaimFacts>,
    events: Vec<(TenantId, NewAuditEvent)>,
}

/// OAuth state (and users) in memory; cheap to clone, clones share the state.
#[derive(Clone)]
pub struct MemoryOAuth {
    clock: Arc<dyn Clock>,
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for MemoryOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryOAuth").finish_non_exhaustive()
    }
}

impl MemoryOAuth {
    /// Stamps `used_at`, `revoked_at` and the like with `clock`, as the database does with its own.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            state: Arc::default(),
        }
    }

    /// Adds (or replaces) a user of `user.tenant_id`.
    pub fn put_user(&self, user: User) {
        self.lock()
            .users
            .insert((user.tenant_id.clone(), user.id.clone()), user);
    }

    /// Sets what the user's tokens may say about their roles, groups and attributes.
    pub fn put_facts(&self, t: &TenantId, user: &UserId, facts: ClaimFacts) {
        self.lock().facts.insert((t.clone(), user.clone()), facts);
    }

    /// The audit events recorded for tenant `t`, oldest first.
    pub fn events(&self, t: &TenantId) -> Vec<NewAuditEvent> {
        let s = self.lock();
        s.events
            .iter()
            .filter(|(tenant, _)| tenant == t)
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves no half-made change: each change is applied
        // only after every check passed, so the state is consistent and usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key(t: &TenantId, id: &str) -> Key {
    (t.clone(), id.to_owned())
}

impl State {
    fn stored_token(&self, t: &TenantId, handle: &str) -> Option<StoredToken> {
        let row = self.tokens.get(&key(t, handle))?;
        let tok = &row.token;
        Some(StoredToken {
            handle: handle.to_owned(),
            kind: tok.kind,
            client_id: tok.client_id.clone(),
            user_id: tok.user_id.clone(),
            scope: tok.scope.clone(),
            audience: tok.audience.clone(),
            created_at: row.created_at,
            expires_at: tok.expires_at,
            used_at: row.used_at,
            revoked_at: row.revoked_at,
            grant: tok
                .grant_id
                .as_ref()
                .and_then(|g| self.grants.get(&key(t, g)).cloned()),
        })
    }

    /// Stores `issued`, or nothing when one of them would break a rule the database enforces
    /// (a handle used twice, a grant that does not exist).
    fn insert_tokens(&mut self, t: &TenantId, now: i64, issued: &[NewToken]) -> Result<()> {
        for (i, tok) in issued.iter().enumerate() {
            let twice = issued[..i].iter().any(|o| o.handle == tok.handle);
            if twice || self.tokens.contains_key(&key(t, &tok.handle)) {
                return Err(StoreError::Conflict("already exists (oauth_tokens)".into()));
            }
            if let Some(g) = &tok.grant_id
                && !self.grants.contains_key(&key(t, g))
            {
                return Err(StoreError::BadReference(format!("no grant {g:?} in this tenant")));
            }
        }
        for tok in issued {
            let row = TokenRow {
                token: tok.clone(),
                created_at: now,
                used_at: None,
                revoked_at: None,
            };
            self.tokens.insert(key(t, &tok.handle), row);
        }
        Ok(())
    }

    /// Revokes grant `id` and every token issued from it; true if the grant was live.
    fn revoke_grant(&mut self, t: &TenantId, id: &str, now: i64) -> bool {
        let revoked = match self.grants.get_mut(&key(t, id)) {
            Some(g) if g.revoked_at.is_none() => {
                g.revoked_at = Some(now);
                true
            }
            _ => false,
        };
        for ((tenant, _), row) in &mut self.tokens {
            if tenant == t && row.token.grant_id.as_deref() == Some(id) && row.revoked_at.is_none() {
                row.revoked_at = Some(now);
            }
        }
        revoked
    }

    /// Revokes the live grants `which` names; a session's `offline_access` grants are kept,
    /// no longer tied to the session that ended.
    fn revoke_matching(&mut self, t: &TenantId, which: GrantsOf<'_>, now: i64) -> usize {
        let keep_offline = matches!(which, GrantsOf::Session(_));
        if let GrantsOf::Session(k) = which {
            for ((tenant, _), g) in &mut self.grants {
                if tenant == t
                    && g.revoked_at.is_none()
                    && g.session_key.as_deref() == Some(k)
                    && g.scope.split(' ').any(|s| s == "offline_access")
                {
                    g.session_key = None;
                }
            }
        }
        let ids: Vec<String> = self
            .grants
            .iter()
            .filter(|((tenant, _), g)| tenant == t && g.revoked_at.is_none())
            .filter(|(_, g)| match which {
                GrantsOf::User(u) => g.user_id == *u,
                GrantsOf::UserClient(u, c) => g.user_id == *u && g.client_id == *c,
                GrantsOf::Session(k) => g.session_key.as_deref() == Some(k),
                GrantsOf::Tenant => true,
            })
            .filter(|(_, g)| !(keep_offline && g.scope.split(' ').any(|s| s == "offline_access")))
            .map(|((_, id), _)| id.clone())
            .collect();
        ids.iter()
            .map(|id| usize::from(self.revoke_grant(t, id, now)))
            .sum()
    }

    /// Finishes a spend as the database does: the winner stores what it issued (then `spend`
    /// marks the code or token used); a reuse revokes the grant and records the reuse instead.
    fn after_spend(
        &mut self,
        t: &TenantId,
        (what, grant_id): (&str, &str),
        now: i64,
        issued: Option<&[NewToken]>,
        event: NewAuditEvent,
    ) -> Result<Spend> {
        if let Some(issued) = issued {
            self.insert_tokens(t, now, issued)?;
            self.events.push((t.clone(), event));
            return Ok(Spend::Spent);
        }
        // As the database does: only the racer that revoked the grant records the reuse.
        if self.revoke_grant(t, grant_id, now) {
            let reuse = NewAuditEvent::failure(
                &event.actor,
                &format!("oauth.{what}_reuse"),
                event.target.clone(),
                json!({"grant": grant_id, "revoked": "grant"}),
            );
            self.events.push((t.clone(), reuse));
        }
        Ok(Spend::Replayed {
            grant_id: grant_id.to_owned(),
        })
    }
}

impl UserLookup for MemoryOAuth {
    fn find_user(&self, t: &TenantId, id: &UserId) -> Result<Option<User>> {
        Ok(self.lock().users.get(&(t.clone(), id.clone())).cloned())
    }

    fn claim_facts(&self, t: &TenantId, id: &UserId) -> Result<ClaimFacts> {
        Ok(self
            .lock()
            .facts
            .get(&(t.clone(), id.clone()))
            .cloned()
            .unwrap_or_default())
    }
}

impl OAuthRepo for MemoryOAuth {
    fn create_code(&self, t: &TenantId, grant: &Grant, code: &NewCode, event: NewAuditEvent) -> Result<()> {
        let mut s = self.lock();
        let (gk, ck) = (key(t, &grant.id), key(t, &code.code_hash));
        if s.grants.contains_key(&gk) || s.codes.contains_key(&ck) {
            return Err(StoreError::Conflict("already exists (oauth_grants)".into()));
        }
        s.grants.insert(gk, grant.clone());
        let row = CodeRow {
            grant_id: grant.id.clone(),
            code: code.clone(),
            created_at: grant.created_at,
            used_at: None,
        };
        s.codes.insert(ck, row);
        s.events.push((t.clone(), event));
        Ok(())
    }

    fn code(&self, t: &TenantId, code_hash: &str) -> Result<Option<StoredCode>> {
        let s = self.lock();
        let Some(row) = s.codes.get(&key(t, code_hash)) else {
            return Ok(None);
        };
        let Some(grant) = s.grants.get(&key(t, &row.grant_id)) else {
            return Ok(None);
        };
        Ok(Some(StoredCode {
            code_hash: code_hash.to_owned(),
            grant: grant.clone(),
            redirect_uri: row.code.redirect_uri.clone(),
            code_challenge: row.code.code_challenge.clone(),
            nonce: row.code.nonce.clone(),
            created_at: row.created_at,
            expires_at: row.code.expires_at,
            used_at: row.used_at,
        }))
    }

    fn redeem_code(
        &self,
        t: &TenantId,
        code: &StoredCode,
        issued: &[NewToken],
        event: NewAuditEvent,
    ) -> Result<Spend> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let k = key(t, &code.code_hash);
        let won = s.codes.get(&k).is_some_and(|c| c.used_at.is_none());
        let spend = s.after_spend(t, ("code", &code.grant.id), now, won.then_some(issued), event)?;
        if let (Spend::Spent, Some(row)) = (&spend, s.codes.get_mut(&k)) {
            row.used_at = Some(now);
        }
        Ok(spend)
    }

    fn token(&self, t: &TenantId, handle: &str) -> Result<Option<StoredToken>> {
        Ok(self.lock().stored_token(t, handle))
    }

    fn rotate_refresh(
        &self,
        t: &TenantId,
        (handle, grant_id): (&str, &str),
        issued: &[NewToken],
        event: NewAuditEvent,
        reuse_grace_ms: i64,
    ) -> Result<Spend> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let k = key(t, handle);
        let row = s.tokens.get(&k);
        let won = row.is_some_and(|r| {
            r.token.kind == TokenKind::Refresh && r.used_at.is_none() && r.revoked_at.is_none()
        });
        // As the database does: the token rotated last, back within the grace window.
        let last_rotated = row
            .filter(|r| r.revoked_at.is_none())
            .and_then(|r| r.used_at)
            .filter(|at| reuse_grace_ms > 0 && *at >= now - reuse_grace_ms)
            .is_some_and(|at| {
                !s.tokens.iter().any(|((tt, h), r)| {
                    tt == t
                        && h != handle
                        && r.token.grant_id.as_deref() == Some(grant_id)
                        && r.token.kind == TokenKind::Refresh
                        && r.used_at.is_some_and(|u| u >= at)
                })
            });
        if !won && last_rotated {
            return Ok(Spend::Superseded {
                grant_id: grant_id.to_owned(),
            });
        }
        let spend = s.after_spend(t, ("refresh", grant_id), now, won.then_some(issued), event)?;
        if let (Spend::Spent, Some(row)) = (&spend, s.tokens.get_mut(&k)) {
            row.used_at = Some(now);
        }
        Ok(spend)
    }

    fn store_tokens(&self, t: &TenantId, issued: &[NewToken]) -> Result<()> {
        let now = self.clock.now_millis();
        self.lock().insert_tokens(t, now, issued)
    }

    fn revoke_token(&self, t: &TenantId, handle: &str, event: NewAuditEvent) -> Result<bool> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let mut revoked = false;
        let mut grant = None;
        if let Some(row) = s.tokens.get_mut(&key(t, handle)) {
            revoked = row.revoked_at.is_none();
            row.revoked_at = row.revoked_at.or(Some(now));
            if row.token.kind == TokenKind::Refresh {
                grant.clone_from(&row.token.grant_id);
            }
        }
        // RFC 7009 §2.1: a refresh token takes its grant (and the grant's tokens) along.
        if let Some(g) = grant {
            revoked |= s.revoke_grant(t, &g, now);
        }
        s.events.push((t.clone(), event));
        Ok(revoked)
    }

    fn revoke_grants(
        &self,
        t: &TenantId,
        which: GrantsOf<'_>,
        _reason: &str,
        mut event: NewAuditEvent,
    ) -> Result<usize> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let n = s.revoke_matching(t, which, now);
        if let Some(o) = event.details.as_object_mut() {
            o.insert("grants_revoked".into(), json!(n));
        }
        s.events.push((t.clone(), event));
        Ok(n)
    }

    fn consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<Option<Consent>> {
        let k = (t.clone(), user.clone(), client.clone());
        Ok(self.lock().consents.get(&k).cloned())
    }

    fn consents(&self, t: &TenantId, user: &UserId) -> Result<Vec<Consent>> {
        let s = self.lock();
        let mut all: Vec<Consent> = s
            .consents
            .iter()
            .filter(|((tenant, u, _), _)| tenant == t && u == user)
            .map(|(_, c)| c.clone())
            .collect();
        all.sort_by_key(|c| c.created_at);
        Ok(all)
    }

    fn save_consent(&self, t: &TenantId, user: &UserId, client: &ClientId, scope: &str) -> Result<()> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let k = (t.clone(), user.clone(), client.clone());
        let consent = match s.consents.get(&k) {
            Some(old) => Consent {
                scope: union(&old.scope, scope),
                updated_at: now,
                ..old.clone()
            },
            None => Consent {
                client_id: client.clone(),
                scope: scope.to_owned(),
                created_at: now,
                updated_at: now,
            },
        };
        let event = NewAuditEvent::success(
            &format!("user:{user}"),
            "consent.grant",
            format!("client:{client}"),
            json!({"scope": consent.scope}),
        );
        s.consents.insert(k, consent);
        s.events.push((t.clone(), event));
        Ok(())
    }

    fn revoke_consent(&self, t: &TenantId, user: &UserId, client: &ClientId) -> Result<bool> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let gone = s
            .consents
            .remove(&(t.clone(), user.clone(), client.clone()))
            .is_some();
        let grants = s.revoke_matching(t, GrantsOf::UserClient(user, client), now);
        let event = NewAuditEvent::success(
            &format!("user:{user}"),
            "consent.revoke",
            format!("client:{client}"),
            json!({"grants_revoked": grants}),
        );
        s.events.push((t.clone(), event));
        Ok(gone)
    }

    fn live_grants(&self, t: &TenantId, user: &UserId) -> Result<Vec<Grant>> {
        let now = self.clock.now_millis();
        let mut live: Vec<Grant> = self
            .lock()
            .grants
            .iter()
            .filter(|((tenant, _), g)| {
                tenant == t && &g.user_id == user && g.revoked_at.is_none() && now < g.expires_at
            })
            .map(|(_, g)| g.clone())
            .collect();
        live.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(live)
    }

    fn revoke_user_grants(
        &self,
        t: &TenantId,
        actor: &str,
        user: &UserId,
        client: Option<&ClientId>,
    ) -> Result<(usize, usize)> {
        let now = self.clock.now_millis();
        let mut s = self.lock();
        let before = s.consents.len();
        s.consents
            .retain(|(tenant, u, c), _| !(tenant == t && u == user && client.is_none_or(|cl| cl == c)));
        let gone = before - s.consents.len();
        let which = client.map_or(GrantsOf::User(user), |cl| GrantsOf::UserClient(user, cl));
        let grants = s.revoke_matching(t, which, now);
        let event = NewAuditEvent::success(
            actor,
            "oauth.revoke_user_grants",
            format!("user:{user}"),
            json!({"client": client, "consents_withdrawn": gone, "grants_revoked": grants}),
        );
        s.events.push((t.clone(), event));
        Ok((gone, grants))
    }

    fn purge_expired_oauth(&self) -> Result<usize> {
        let cutoff = self.clock.now_millis() - 86_400_000;
        let mut s = self.lock();
        let before = s.codes.len() + s.tokens.len() + s.grants.len();
        s.codes.retain(|_, c| c.code.expires_at >= cutoff);
        s.tokens.retain(|_, r| r.token.expires_at >= cutoff);
        s.grants.retain(|_, g| g.expires_at >= cutoff);
        Ok(before - (s.codes.len() + s.tokens.len() + s.grants.len()))
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
