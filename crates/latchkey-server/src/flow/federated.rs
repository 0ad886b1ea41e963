//! Accounts for people who sign in through a connection, SAML or upstream OpenID Connect: the
//! identity linked before, a trusted local account linked now, or a user made just in time;
//! then the connection's role and group maps and its word on the address. One set of rules for
//! both kinds, so a rule (S8: one connection never mints or takes over another's people) holds
//! for both.

use crate::flow::realm::RealmKind;
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use latchkey_core::{Principal, Tenant, User};
use latchkey_store::{GroupRepo, NewUser, RoleRepo, SamlRepo, UpstreamRepo, UserRepo};

/// The connection a person came through, as the account rules see it.
pub(crate) struct Source<'a> {
    pub kind: RealmKind,
    pub id: &'a str,
    pub name: &'a str,
    /// Email domains the connection claims (it is trusted for them).
    pub domains: &'a [String],
    pub jit: bool,
    pub link_existing: bool,
    /// Linking also needs the connection to vouch for the address (upstream OIDC: the
    /// provider's `email_verified`, trusted by the operator).
    pub link_needs_vouch: bool,
    pub role_map: &'a [(String, String)],
    pub group_map: &'a [(String, String)],
}

impl Source<'_> {
    /// The audit actor and the `kind:name` prefix of JIT usernames.
    pub fn actor(&self) -> String {
        format!("{}:{}", self.prefix(), self.name)
    }

    fn prefix(&self) -> &'static str {
        match self.kind {
            RealmKind::Saml => "saml",
            RealmKind::Oidc => "oidc",
        }
    }
}

/// What the connection says about the person.
pub(crate) struct Asserted {
    /// The identity's key within the connection (NameID, `sub`).
    pub subject: String,
    pub email: Option<String>,
    /// The connection vouches for `email`: a user created with it, or holding it, is verified.
    pub email_vouched: bool,
    pub name: Option<String>,
    /// The connection's groups, for the role and group maps.
    pub groups: Vec<String>,
}

/// Why no account.
#[derive(Debug)]
pub(crate) enum AccountError {
    NoAccount,
    EmailConflict,
    /// The address is in a domain another connection of the tenant claims.
    ForeignDomain {
        domain: String,
        claimed_by: String,
    },
    Internal(AppError),
}

impl From<AppError> for AccountError {
    fn from(e: AppError) -> Self {
        Self::Internal(e)
    }
}

/// The user this sign-in is for: linked before, linked now to a trusted local account, or
/// created (JIT) in this connection's tenant only (S8). The second value says which.
pub(crate) async fn account(
    state: &AppState,
    tenant: &Tenant,
    src: &Source<'_>,
    a: &Asserted,
) -> Result<(User, &'static str), AccountError> {
    let (tid, kind, cid, sub) = (tenant.id.clone(), src.kind, src.id.to_owned(), a.subject.clone());
    let linked = state
        .store(move |db| match kind {
            RealmKind::Saml => db.saml_identity(&tid, &cid, &sub),
            RealmKind::Oidc => db.oidc_identity(&tid, &cid, &sub),
        })
        .await?;
    if let Some(uid) = linked {
        let tid = tenant.id.clone();
        let user = state
            .store(move |db| db.user(&tid, &uid))
            .await?
            .ok_or(AccountError::NoAccount)?;
        return Ok((user, "linked"));
    }
    if let Some(email) = &a.email {
        check_domain_owner(state, tenant, src, email).await?;
        let (tid, e) = (tenant.id.clone(), email.clone());
        let existing = state.store(move |db| db.user_by_email(&tid, &e)).await?;
        if let Some(local) = existing {
            return link_existing(state, tenant, src, a, local, email).await;
        }
    }
    if !src.jit {
        return Err(AccountError::NoAccount);
    }
    provision(state, tenant, src, a).await
}

/// S8: a connection brings in people only outside the domains other connections claim. A new
/// user's email (and the username made from it) in another connection's domain is refused, so
/// one IdP can't mint accounts that portals would take for another IdP's people.
async fn check_domain_owner(
    state: &AppState,
    tenant: &Tenant,
    src: &Source<'_>,
    email: &str,
) -> Result<(), AccountError> {
    match crate::flow::realm::for_email(state, tenant, email).await? {
        Some(owner) if owner.id != src.id => Err(AccountError::ForeignDomain {
            domain: email
                .rsplit_once('@')
                .map(|(_, d)| d.to_lowercase())
                .unwrap_or_default(),
            claimed_by: owner.name,
        }),
        _ => Ok(()),
    }
}

/// An existing local account with the asserted address: joined to this connection only when it
/// is trusted for the address's domain (and vouches for it, where that is asked) and no
/// connection of either kind signs in to it yet.
async fn link_existing(
    state: &AppState,
    tenant: &Tenant,
    src: &Source<'_>,
    a: &Asserted,
    local: User,
    email: &str,
) -> Result<(User, &'static str), AccountError> {
    // An address on another connection's JIT user came from that IdP, not from the person.
    // Addresses in a claimed domain can't be set by users themselves (account page).
    let (tid, uid) = (tenant.id.clone(), local.id.clone());
    let federated = state
        .store(move |db| {
            Ok::<_, latchkey_store::StoreError>(
                !db.saml_identities_of_user(&tid, &uid)?.is_empty()
                    || !db.oidc_identities_of_user(&tid, &uid)?.is_empty(),
            )
        })
        .await?;
    // The local account's own address must be proven too: else whoever signed up with someone
    // else's address before the domain was claimed would be joined to that person (account
    // pre-hijacking).
    let trusted = src.link_existing
        && local.email_verified
        && in_domains(src, email)
        && (a.email_vouched || !src.link_needs_vouch);
    if federated || !trusted {
        return Err(AccountError::EmailConflict);
    }
    let (tid, kind, cid, sub, uid) = (
        tenant.id.clone(),
        src.kind,
        src.id.to_owned(),
        a.subject.clone(),
        local.id.clone(),
    );
    let actor = src.actor();
    state
        .store(move |db| match kind {
            RealmKind::Saml => db.link_saml_identity(&tid, &actor, &cid, &sub, &uid),
            RealmKind::Oidc => db.link_oidc_identity(&tid, &actor, &cid, &sub, &uid),
        })
        .await?;
    Ok((local, "linked_now"))
}

/// Just-in-time provisioning: a new user linked to the subject, in one transaction.
async fn provision(
    state: &AppState,
    tenant: &Tenant,
    src: &Source<'_>,
    a: &Asserted,
) -> Result<(User, &'static str), AccountError> {
    // The address as username when it is free and the connection vouches for it or is trusted
    // for its domain; otherwise a stable name from the subject (an address anyone could type
    // upstream must not become a sign-in name portals take for the mailbox's owner).
    let fallback = format!(
        "{}.{}",
        src.name,
        &latchkey_core::sha256_hex(a.subject.as_bytes())[..16]
    );
    let mut username = fallback;
    if let Some(e) = a
        .email
        .as_deref()
        .filter(|e| (a.email_vouched || in_domains(src, e)) && latchkey_core::validate::username(e).is_ok())
    {
        let (tid, e2) = (tenant.id.clone(), e.to_owned());
        if state
            .store(move |db| db.user_by_username(&tid, &e2))
            .await?
            .is_none()
        {
            username = e.to_owned();
        }
    }
    let new = NewUser {
        username,
        email: a.email.clone(),
        display_name: a
            .name
            .clone()
            .filter(|n| latchkey_core::validate::display_name("display_name", n).is_ok()),
        password_hash: None,
        email_verified: a.email.is_some() && a.email_vouched,
    };
    let (tid, kind, cid, sub) = (tenant.id.clone(), src.kind, src.id.to_owned(), a.subject.clone());
    match state
        .store(move |db| match kind {
            RealmKind::Saml => db.provision_saml_user(&tid, &cid, &sub, &new),
            RealmKind::Oidc => db.provision_oidc_user(&tid, &cid, &sub, &new),
        })
        .await
    {
        Ok(user) => Ok((user, "created")),
        Err(AppError {
            kind: Kind::Conflict, ..
        }) => Err(AccountError::EmailConflict),
        Err(e) => Err(e.into()),
    }
}

/// Whether `email` is in a domain the connection claims.
fn in_domains(src: &Source<'_>, email: &str) -> bool {
    email
        .rsplit_once('@')
        .is_some_and(|(_, d)| src.domains.iter().any(|c| c.eq_ignore_ascii_case(d)))
}

/// The tenant roles `map` grants for the connection's `groups`.
pub(crate) fn mapped(map: &[(String, String)], groups: &[String]) -> Vec<String> {
    map.iter()
        .filter(|(g, _)| groups.contains(g))
        .map(|(_, r)| r.clone())
        .collect()
}

/// After the account: roles and groups follow the connection's maps (only those the maps name;
/// other memberships are left alone), and a vouched-for address is marked verified when it is
/// the user's very address (a user who changed theirs since keeps it unverified). Then the
/// identity's last sign-in is recorded.
pub(crate) async fn sync(
    state: &AppState,
    tenant: &Tenant,
    src: &Source<'_>,
    user: &User,
    a: &Asserted,
) -> Result<(), AppError> {
    let roles = (!src.role_map.is_empty()).then(|| {
        (
            mapped(src.role_map, &a.groups),
            src.role_map.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(),
        )
    });
    let groups = (!src.group_map.is_empty()).then(|| {
        (
            mapped(src.group_map, &a.groups),
            src.group_map.iter().map(|(_, g)| g.clone()).collect::<Vec<_>>(),
        )
    });
    let vouch = a.email_vouched && !user.email_verified && user.email.is_some() && a.email == user.email;
    let (tid, uid, actor, kind, cid, sub) = (
        tenant.id.clone(),
        user.id.clone(),
        src.actor(),
        src.kind,
        src.id.to_owned(),
        a.subject.clone(),
    );
    state
        .store(move |db| {
            if let Some((wanted, managed)) = &roles {
                sync_roles(db, &tid, &actor, &uid, wanted, managed)?;
            }
            if let Some((wanted, managed)) = &groups {
                sync_groups(db, &tid, &actor, &uid, wanted, managed)?;
            }
            if vouch {
                latchkey_store::EmailVerificationRepo::set_email_verified(db, &tid, &actor, &uid, true)?;
            }
            match kind {
                RealmKind::Saml => db.saml_login_seen(&tid, &cid, &sub),
                RealmKind::Oidc => db.oidc_login_seen(&tid, &cid, &sub),
            }
        })
        .await
}

fn sync_roles(
    db: &latchkey_store::Db,
    tid: &latchkey_core::TenantId,
    actor: &str,
    uid: &latchkey_core::UserId,
    wanted: &[String],
    managed: &[String],
) -> Result<(), latchkey_store::StoreError> {
    let have = db.roles_of_user(tid, uid)?;
    for role in db.list_roles(tid)?.iter().filter(|r| managed.contains(&r.name)) {
        let has = have.iter().any(|h| h.id == role.id);
        let should = wanted.contains(&role.name);
        if should && !has {
            db.assign_role(tid, actor, uid, &role.id)?;
        } else if !should && has {
            db.unassign_role(tid, actor, uid, &role.id)?;
        }
    }
    Ok(())
}

fn sync_groups(
    db: &latchkey_store::Db,
    tid: &latchkey_core::TenantId,
    actor: &str,
    uid: &latchkey_core::UserId,
    wanted: &[String],
    managed: &[String],
) -> Result<(), latchkey_store::StoreError> {
    let have = db.direct_groups(tid, uid)?;
    let member = Principal::User(uid.clone());
    for group in db.list_groups(tid)?.iter().filter(|g| managed.contains(&g.name)) {
        let has = have.contains(&group.id);
        let should = wanted.contains(&group.name);
        if should && !has {
            db.add_member(tid, actor, &group.id, &member)?;
        } else if !should && has {
            db.remove_member(tid, actor, &group.id, &member)?;
        }
    }
    Ok(())
}
