//! A person's data as they may ask for it (GDPR Art. 15 and 20, CCPA's right to know): one
//! shape for the account page's download, `latchkey user export` and the admin API, so the
//! three can't disagree on what a person is told. Secrets are left out by construction: the
//! export is built from views that have no field for a hash, a seed, a credential or a key.
//!
//! And the same person's recent security activity, read from the audit chain for the account
//! page (`activity`).

use crate::ServiceError;
use latchkey_core::{AuditEvent, EffectiveAccess, NewAuditEvent, Outcome, Session, Tenant, UnixMillis, User};
use latchkey_store::{
    AttributeRepo, AttributeValues, AuditFilter, AuditRepo, Db, GroupRepo, LifecycleRepo, MfaRepo, RiskRepo,
    SamlRepo, UpstreamRepo,
};
use serde::Serialize;
use serde_json::{Value, json};

/// Names the export's shape; a later change of shape gets a new number.
pub const FORMAT: &str = "latchkey-user-export/1";
/// At most this many of the person's audit events are exported (the newest are kept).
pub const MAX_EXPORTED_EVENTS: usize = 10_000;

/// Everything Latchkey holds about one person in one tenant.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct UserExport {
    pub format: &'static str,
    pub generated_at: UnixMillis,
    pub tenant: TenantView,
    pub profile: Profile,
    /// The tenant's attributes with this person's values.
    #[cfg_attr(
        feature = "schema",
        schemars(with = "std::collections::BTreeMap<String, Value>")
    )]
    pub attributes: AttributeValues,
    /// Groups and roles, through nesting too.
    pub access: EffectiveAccess,
    pub factors: Factors,
    /// The live browser sessions; `None` when the session store can't be read from here (the
    /// embedded store lives in the server's process: ask the admin API there).
    pub sessions: Option<Vec<SessionView>>,
    /// Applications the person consented to or holds live grants of.
    pub applications: Vec<crate::grants::ClientGrants>,
    /// Accounts at a SAML or OpenID Connect provider that sign in as this person.
    pub linked_identities: Vec<LinkedIdentity>,
    /// What the risk engine remembers of earlier sign-ins (devices are digests of a cookie).
    pub sign_in_history: Option<Value>,
    /// Audit events where the person acted or was acted on, oldest first.
    pub audit_events: Vec<AuditEvent>,
    /// More events exist than `MAX_EXPORTED_EVENTS`; the oldest were left out.
    pub audit_events_truncated: bool,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TenantView {
    pub slug: String,
    pub name: String,
}

/// The account itself, without its password hash.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Profile {
    pub id: String,
    pub username: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub display_name: Option<String>,
    pub status: latchkey_core::UserStatus,
    pub has_password: bool,
    pub password_changed_at: Option<UnixMillis>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
    /// When a requested deletion happens, if one is pending.
    pub deletion_due_at: Option<UnixMillis>,
}

/// Second factors: that they exist and when they were used, never a seed or a credential.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Factors {
    pub totp: Option<TotpView>,
    pub recovery_codes_left: usize,
    pub passkeys: Vec<PasskeyView>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TotpView {
    pub created_at: UnixMillis,
    pub confirmed_at: Option<UnixMillis>,
    pub last_used_at: Option<UnixMillis>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created_at: UnixMillis,
    pub last_used_at: Option<UnixMillis>,
}

/// A browser session, without its key.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SessionView {
    pub created_at: UnixMillis,
    pub last_seen: UnixMillis,
    pub auth_time: UnixMillis,
    pub amr: Vec<String>,
    pub acr: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The risk engine's decision for the sign-in that made it.
    pub risk: Option<String>,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        Self {
            created_at: s.created_at,
            last_seen: s.last_seen,
            auth_time: s.auth_time,
            amr: s.amr.clone(),
            acr: s.acr.clone(),
            ip: s.ip.clone(),
            user_agent: s.user_agent.clone(),
            risk: s.risk.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LinkedIdentity {
    /// `saml` or `oidc`.
    pub kind: &'static str,
    /// The connection's name (its id when it has since been removed).
    pub connection: String,
    /// The NameID or `sub` the provider sends.
    pub subject: String,
}

/// What to export and who asks.
pub struct ExportRequest<'a> {
    pub tenant: &'a Tenant,
    pub user: &'a User,
    /// The person's live sessions, when the caller can read the session store.
    pub sessions: Option<Vec<Session>>,
    /// Who asked, for the audit event: `user:<id>`, `admin:<id>`, `cli:<name>`.
    pub actor: &'a str,
    pub now: UnixMillis,
}

/// Builds the export and records `user.export` (who asked, how many events) in the chain.
/// Reads the store and opens the sealed sign-in history: run it off the async threads.
pub fn export(db: &Db, r: ExportRequest<'_>) -> Result<UserExport, ServiceError> {
    let (t, user) = (&r.tenant.id, r.user);
    let totp = db.totp(t, &user.id)?.map(|f| TotpView {
        created_at: f.created_at,
        confirmed_at: f.confirmed_at,
        last_used_at: f.last_used_at,
    });
    let passkeys = db
        .passkeys(t, &user.id)?
        .into_iter()
        .map(|k| PasskeyView {
            id: k.id,
            name: k.name,
            created_at: k.created_at,
            last_used_at: k.last_used_at,
        })
        .collect();
    let factors = Factors {
        totp,
        recovery_codes_left: db.recovery_codes_left(t, &user.id)?,
        passkeys,
    };
    let (events, truncated) = own_events(db, r.tenant, user)?;
    let export = UserExport {
        format: FORMAT,
        generated_at: r.now,
        tenant: TenantView {
            slug: r.tenant.slug.clone(),
            name: r.tenant.display_name.clone(),
        },
        profile: profile(db, r.tenant, user)?,
        attributes: db.user_attributes(t, &user.id)?,
        access: db.effective_access(t, &user.id)?,
        factors,
        sessions: r
            .sessions
            .as_ref()
            .map(|s| s.iter().map(SessionView::from).collect()),
        applications: crate::grants::by_client(db, t, &user.id)?.0,
        linked_identities: linked_identities(db, r.tenant, user)?,
        sign_in_history: sign_in_history(db, r.tenant, user)?,
        audit_events: events,
        audit_events_truncated: truncated,
    };
    let details = json!({
        "audit_events": export.audit_events.len(),
        "sessions_included": export.sessions.is_some(),
    });
    db.append_audit(
        t,
        NewAuditEvent::success(r.actor, "user.export", format!("user:{}", user.id), details),
    )?;
    Ok(export)
}

fn profile(db: &Db, tenant: &Tenant, u: &User) -> Result<Profile, ServiceError> {
    Ok(Profile {
        id: u.id.to_string(),
        username: u.username.clone(),
        email: u.email.clone(),
        email_verified: u.email_verified,
        display_name: u.display_name.clone(),
        status: u.status,
        has_password: u.password_hash.is_some(),
        password_changed_at: u.password_changed_at,
        created_at: u.created_at,
        updated_at: u.updated_at,
        deletion_due_at: db.deletion_due(&tenant.id, &u.id)?,
    })
}

fn linked_identities(db: &Db, tenant: &Tenant, u: &User) -> Result<Vec<LinkedIdentity>, ServiceError> {
    let t = &tenant.id;
    let mut out = Vec::new();
    for (connection, subject) in db.saml_identities_of_user(t, &u.id)? {
        let name = db.saml_connection(t, &connection)?.map_or(connection, |c| c.name);
        out.push(LinkedIdentity {
            kind: "saml",
            connection: name,
            subject,
        });
    }
    for (connection, subject) in db.oidc_identities_of_user(t, &u.id)? {
        let name = db.oidc_connection(t, &connection)?.map_or(connection, |c| c.name);
        out.push(LinkedIdentity {
            kind: "oidc",
            connection: name,
            subject,
        });
    }
    Ok(out)
}

/// The sealed risk history, opened. One that can't be opened is reported as such rather than
/// failing the export: the person still gets the rest.
fn sign_in_history(db: &Db, tenant: &Tenant, u: &User) -> Result<Option<Value>, ServiceError> {
    let opened: Option<Value> = match db.risk_history(&tenant.id, &u.id) {
        Ok(None) => return Ok(None),
        Ok(Some(plain)) => serde_json::from_slice(&plain).ok(),
        Err(latchkey_store::StoreError::Sealed(_)) => None,
        Err(e) => return Err(e.into()),
    };
    Ok(Some(opened.unwrap_or_else(|| json!({"unreadable": true}))))
}

/// The person's events, the newest `MAX_EXPORTED_EVENTS`, oldest first; and whether older ones
/// were left out.
fn own_events(db: &Db, tenant: &Tenant, u: &User) -> Result<(Vec<AuditEvent>, bool), ServiceError> {
    let filter = AuditFilter {
        user: Some(u.id.to_string()),
        ..AuditFilter::default()
    };
    newest(db, tenant, &filter, MAX_EXPORTED_EVENTS, Some)
}

/// The last `keep` of the events matching `filter` that `pick` keeps (as what it makes of
/// them), oldest first, read page by page; and whether earlier ones were dropped.
fn newest<T>(
    db: &Db,
    tenant: &Tenant,
    filter: &AuditFilter,
    keep: usize,
    pick: impl Fn(AuditEvent) -> Option<T>,
) -> Result<(Vec<T>, bool), ServiceError> {
    let (mut out, mut after, mut dropped) = (Vec::new(), 0, false);
    loop {
        let page = db.audit_search(&tenant.id, filter, after, 1_000)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        out.extend(page.into_iter().filter_map(&pick));
        if out.len() > keep {
            out.drain(..out.len() - keep);
            dropped = true;
        }
    }
    Ok((out, dropped))
}

/// One line of the account page's security activity.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Activity {
    pub at: UnixMillis,
    /// The audit action (`login.success`, `user.password_change`, `consent.grant`, …).
    pub action: String,
    pub outcome: Outcome,
    /// The client address the event recorded.
    pub ip: Option<String>,
    /// The browser, as its `User-Agent` named it.
    pub device: Option<String>,
    /// Where the address is, when the GeoIP database knew it.
    pub place: Option<String>,
    /// The risk engine's decision (`allow`, `step_up`, `deny`) and score.
    pub risk: Option<String>,
    /// The application, for consents.
    pub client: Option<String>,
}

/// The actions the account page shows: sign-ins, factor and password changes, consents,
/// sessions ended, exports and deletion requests.
const SHOWN: [&str; 10] = [
    "terms.*",
    "login.*",
    "user.password*",
    "mfa.*",
    "consent.*",
    "session.revoke*",
    "user.export",
    "user.email_verified",
    "user.deletion*",
    "user.update",
];

fn shown(action: &str) -> bool {
    SHOWN.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => action == *p,
    })
}

/// The person's last `limit` security events since `since`, newest first.
pub fn activity(
    db: &Db,
    tenant: &Tenant,
    u: &User,
    since: UnixMillis,
    limit: usize,
) -> Result<Vec<Activity>, ServiceError> {
    let filter = AuditFilter {
        user: Some(u.id.to_string()),
        since: Some(since),
        ..AuditFilter::default()
    };
    let (mut out, _) = newest(db, tenant, &filter, limit, |e| shown(&e.action).then(|| line(&e)))?;
    out.reverse();
    Ok(out)
}

fn line(e: &AuditEvent) -> Activity {
    let s = |k: &str| e.details.get(k).and_then(Value::as_str).map(str::to_owned);
    let risk = match (
        s("risk_decision"),
        e.details.get("risk_score").and_then(Value::as_u64),
    ) {
        (Some(d), Some(score)) => Some(format!("{d} ({score})")),
        (None, Some(score)) => Some(score.to_string()),
        (d, None) => d,
    };
    Activity {
        at: e.at,
        action: e.action.clone(),
        outcome: e.outcome,
        ip: s("ip"),
        device: s("user_agent"),
        place: s("place"),
        risk,
        client: s("client_id").or_else(|| e.target.strip_prefix("client:").map(str::to_owned)),
    }
}

/// The longest erasure grace period honoured (the policy's bound).
const MAX_ERASURE_GRACE_DAYS: u32 = 90;

/// What an erasure did: erased now, or scheduled for the end of the tenant's grace period.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Erasure {
    pub id: latchkey_core::UserId,
    /// `erased` (rows and key gone) or `scheduled` (closed now, erased at `due_at`).
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<UnixMillis>,
    /// The key the person's data was sealed under was destroyed (false only for an account
    /// written before sealing existed, whose rows are deleted all the same).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_destroyed: Option<bool>,
    pub reason: String,
}

/// Erases `user` (the right to erasure, docs/privacy.md#erasure): at once when the tenant's
/// `accounts.erasure_grace_days` is 0, else closes the account and schedules it. `reason` is
/// required and recorded in the audit event; identifiers in the event are pseudonyms.
pub fn erase(
    db: &Db,
    tenant: &Tenant,
    actor: &str,
    user: &latchkey_core::UserId,
    reason: &str,
    now: UnixMillis,
) -> Result<Erasure, ServiceError> {
    let grace = tenant
        .policy
        .accounts
        .erasure_grace_days
        .min(MAX_ERASURE_GRACE_DAYS);
    if grace == 0 {
        let details = db.erase_user(&tenant.id, actor, user, reason)?;
        return Ok(Erasure {
            id: user.clone(),
            status: "erased",
            due_at: None,
            key_destroyed: details["key_destroyed"].as_bool(),
            reason: reason.trim().to_owned(),
        });
    }
    let due_at = now + i64::from(grace) * 86_400_000;
    db.schedule_erasure(&tenant.id, actor, user, due_at, reason)?;
    Ok(Erasure {
        id: user.clone(),
        status: "scheduled",
        due_at: Some(due_at),
        key_destroyed: None,
        reason: reason.trim().to_owned(),
    })
}
