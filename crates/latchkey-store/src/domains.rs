//! Domains a tenant claims and proves it controls (issue 22, SAML onboarding): a DNS TXT record
//! or an HTTP file carrying the claim's token. The check itself runs outside the store
//! (`latchkey_services::domains`); here are the claims and their outcomes, each change audited.
//! A domain may be claimed by several tenants but verified by one at most (a unique index on
//! verified domains: the second tenant's verification is a `Conflict`).

use crate::db::Db;
use crate::schema::tenant_domains;
use crate::{Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, Outcome, TenantId};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How a claim is proven.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum DomainMethod {
    /// A TXT record `latchkey-verification={token}` at `_latchkey-challenge.{domain}`.
    Dns,
    /// The token as the body of `https://{domain}/.well-known/latchkey-verification.txt`.
    Http,
}

impl DomainMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dns => "dns",
            Self::Http => "http",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "dns" => Ok(Self::Dns),
            "http" => Ok(Self::Http),
            other => Err(StoreError::Corrupt(format!("domain method {other:?}"))),
        }
    }
}

/// A tenant's claim on a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TenantDomain {
    pub domain: String,
    pub method: DomainMethod,
    /// What the TXT record or the file must carry (not a secret: it is published).
    pub token: String,
    /// When the claim was proven (Unix ms); `null` while it is not.
    pub verified_at: Option<i64>,
    pub last_checked_at: Option<i64>,
    /// Why the last check failed (a reason code and a short explanation).
    pub last_error: Option<String>,
    pub created_at: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = tenant_domains)]
struct Row {
    domain: String,
    method: String,
    token: String,
    verified_at: Option<i64>,
    last_checked_at: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
}

fn from_row(r: Row) -> Result<TenantDomain> {
    Ok(TenantDomain {
        method: DomainMethod::parse(&r.method)?,
        domain: r.domain,
        token: r.token,
        verified_at: r.verified_at,
        last_checked_at: r.last_checked_at,
        last_error: r.last_error,
        created_at: r.created_at,
    })
}

pub trait DomainRepo {
    /// Claims `domain` for tenant `t` with `token` to prove it by `method`. `Conflict` when the
    /// tenant claims it already.
    fn add_domain(
        &self,
        t: &TenantId,
        actor: &str,
        domain: &str,
        method: DomainMethod,
        token: &str,
    ) -> Result<TenantDomain>;
    /// The tenant's claims by domain.
    fn list_domains(&self, t: &TenantId) -> Result<Vec<TenantDomain>>;
    fn tenant_domain(&self, t: &TenantId, domain: &str) -> Result<Option<TenantDomain>>;
    /// Records a check of the claim: `Ok` marks it verified (kept from the first success), `Err`
    /// records why it failed (a verified claim stays verified). `Conflict` when another tenant
    /// has verified the domain; `NotFound` without a claim.
    fn record_domain_check(
        &self,
        t: &TenantId,
        actor: &str,
        domain: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<TenantDomain>;
    /// Withdraws the claim. `NotFound` without one.
    fn remove_domain(&self, t: &TenantId, actor: &str, domain: &str) -> Result<()>;
}

fn load(c: &mut crate::AnyConnection, t: &TenantId, domain: &str) -> Result<TenantDomain> {
    tenant_domains::table
        .find((t.as_str(), domain))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .ok_or(StoreError::NotFound { what: "domain" })
        .and_then(from_row)
}

impl DomainRepo for Db {
    fn add_domain(
        &self,
        t: &TenantId,
        actor: &str,
        domain: &str,
        method: DomainMethod,
        token: &str,
    ) -> Result<TenantDomain> {
        let now = self.now();
        self.audited(t, |c| {
            diesel::insert_into(tenant_domains::table)
                .values((
                    tenant_domains::tenant_id.eq(t.as_str()),
                    tenant_domains::domain.eq(domain),
                    tenant_domains::method.eq(method.as_str()),
                    tenant_domains::token.eq(token),
                    tenant_domains::created_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => {
                        StoreError::Conflict(format!("the tenant claims {domain} already"))
                    }
                    other => other,
                })?;
            let event = NewAuditEvent::success(
                actor,
                "domain.add",
                format!("domain:{domain}"),
                json!({"domain": domain, "method": method.as_str()}),
            );
            Ok((load(c, t, domain)?, event))
        })
    }

    fn list_domains(&self, t: &TenantId) -> Result<Vec<TenantDomain>> {
        tenant_domains::table
            .filter(tenant_domains::tenant_id.eq(t.as_str()))
            .order(tenant_domains::domain.asc())
            .select(Row::as_select())
            .load(&mut *self.conn()?)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn tenant_domain(&self, t: &TenantId, domain: &str) -> Result<Option<TenantDomain>> {
        match load(&mut *self.conn()?, t, domain) {
            Ok(d) => Ok(Some(d)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn record_domain_check(
        &self,
        t: &TenantId,
        actor: &str,
        domain: &str,
        outcome: std::result::Result<(), String>,
    ) -> Result<TenantDomain> {
        let now = self.now();
        self.audited(t, |c| {
            let before = load(c, t, domain)?;
            let row = tenant_domains::table.find((t.as_str(), domain));
            let event = match &outcome {
                Ok(()) => {
                    diesel::update(row)
                        .set((
                            tenant_domains::verified_at.eq(before.verified_at.or(Some(now))),
                            tenant_domains::last_checked_at.eq(Some(now)),
                            tenant_domains::last_error.eq(None::<String>),
                        ))
                        .execute(c)
                        .map_err(|e| match StoreError::from(e) {
                            StoreError::Conflict(_) => StoreError::Conflict(format!(
                                "{domain} is verified by another tenant; it can be verified by one tenant only"
                            )),
                            other => other,
                        })?;
                    NewAuditEvent::success(
                        actor,
                        "domain.verify",
                        format!("domain:{domain}"),
                        json!({"domain": domain, "method": before.method.as_str()}),
                    )
                }
                Err(reason) => {
                    diesel::update(row)
                        .set((
                            tenant_domains::last_checked_at.eq(Some(now)),
                            tenant_domains::last_error.eq(Some(reason.as_str())),
                        ))
                        .execute(c)?;
                    NewAuditEvent {
                        actor: actor.to_owned(),
                        action: "domain.verify".into(),
                        target: format!("domain:{domain}"),
                        outcome: Outcome::Failure,
                        details: json!({"domain": domain, "method": before.method.as_str(), "error": reason}),
                    }
                }
            };
            Ok((load(c, t, domain)?, event))
        })
    }

    fn remove_domain(&self, t: &TenantId, actor: &str, domain: &str) -> Result<()> {
        self.audited(t, |c| {
            let gone = diesel::delete(tenant_domains::table.find((t.as_str(), domain))).execute(c)?;
            if gone == 0 {
                return Err(StoreError::NotFound { what: "domain" });
            }
            let event = NewAuditEvent::success(
                actor,
                "domain.remove",
                format!("domain:{domain}"),
                json!({"domain": domain}),
            );
            Ok(((), event))
        })
    }
}
