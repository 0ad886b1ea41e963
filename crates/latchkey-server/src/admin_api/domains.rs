//! `/admin/t/{tenant}/domains…`: domains the tenant claims and proves it controls (issue 22,
//! SAML onboarding), as `latchkey domain` does: a claim publishes a challenge (a DNS TXT record
//! or an HTTP file), `verify` checks it now (`latchkey_services::domains`: the configured
//! resolver; the outbound guard for HTTP) and answers verified or the step that failed. A domain
//! verified by one tenant can't be verified by another (409). Needs `saml:read`/`saml:write`.

use super::{Caller, audit, authenticate, body, json_ok, not_found};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Outcome;
use latchkey_services::domains::{self, CheckFailure};
use latchkey_store::{DomainMethod, DomainRepo, TenantDomain};
use serde_json::json;

/// `POST …/domains`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddBody {
    /// The domain, such as `corp.example`.
    domain: String,
    /// How the claim will be proven: `dns` or `http`.
    method: DomainMethod,
}

impl Default for AddBody {
    fn default() -> Self {
        Self {
            domain: String::new(),
            method: DomainMethod::Dns,
        }
    }
}

/// A claim with the challenge to publish.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Challenge {
    #[serde(flatten)]
    claim: TenantDomain,
    /// The TXT record's name and value (method `dns`).
    dns_name: String,
    dns_value: String,
    /// Where the file goes and what it says (method `http`).
    http_url: String,
    http_body: String,
}

impl From<TenantDomain> for Challenge {
    fn from(claim: TenantDomain) -> Self {
        Challenge {
            dns_name: domains::dns_name(&claim.domain),
            dns_value: domains::dns_value(&claim.token),
            http_url: domains::http_url(&claim.domain),
            http_body: claim.token.clone(),
            claim,
        }
    }
}

/// A check's outcome.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct Verification {
    #[serde(flatten)]
    challenge: Challenge,
    verified: bool,
    /// Why not: `no_record`, `wrong_value`, `dns_error`, `timeout`, `http_status`,
    /// `http_error`, `too_large` or `address_refused`.
    reason: Option<&'static str>,
    /// The reason explained.
    detail: Option<String>,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct DomainRemoved {
    deleted: &'static str,
    domain: String,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::new(Kind::BadRequest, message)
}

/// The domain of a path, normalized; 404 for one that can't be a claim.
fn path_domain(raw: &str) -> Result<String, AppError> {
    domains::normalize(raw).map_err(|_| not_found("domain"))
}

async fn claim(state: &AppState, caller: &Caller, domain: String) -> Result<TenantDomain, AppError> {
    let tid = caller.tenant.id.clone();
    state
        .store(move |db| db.tenant_domain(&tid, &domain))
        .await?
        .ok_or_else(|| not_found("domain"))
}

/// `POST …/domains` `{"domain", "method": "dns"|"http"}`: 201 with the claim and its
/// challenge; 409 when the tenant claims it already.
pub(super) async fn add(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let b: AddBody = body(&bytes, false)?;
        let domain = domains::normalize(&b.domain).map_err(bad)?;
        let token = latchkey_core::random_token(&*state.rng, 24);
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let made = state
            .store(move |db| db.add_domain(&tid, &actor, &domain, b.method, &token))
            .await?;
        Ok(HttpResponse::Created()
            .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
            .json(Challenge::from(made)))
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/domains`: every claim with its challenge, by domain.
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let tid = caller.tenant.id.clone();
        let all = state.store(move |db| db.list_domains(&tid)).await?;
        audit(
            &state,
            &caller,
            Outcome::Success,
            "domain.list",
            "domains",
            json!({"count": all.len()}),
        )
        .await?;
        Ok(json_ok(&all.into_iter().map(Challenge::from).collect::<Vec<_>>()))
    }
    .await
    .map_err(AppError::problem)
}

/// `POST …/domains/{domain}/verify`: checks the challenge now. 200 with `verified` and, when
/// not, the `reason` and `detail`; 409 when another tenant verified the domain; 404 without a
/// claim.
pub(super) async fn verify(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, raw) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let domain = path_domain(&raw)?;
        let c = claim(&state, &caller, domain.clone()).await?;
        let config = &state.config;
        let checked = match c.method {
            DomainMethod::Dns => domains::check_dns(config.dns_resolver, &c.domain, &c.token).await,
            DomainMethod::Http => {
                let policy = &config.outbound_allow_private;
                domains::check_http(policy, config.domain_check_http_addr, &c.domain, &c.token).await
            }
        };
        let failure: Option<CheckFailure> = checked.err();
        let outcome = failure.as_ref().map_or(Ok(()), |f| Err(f.message()));
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let after = state
            .store(move |db| db.record_domain_check(&tid, &actor, &domain, outcome))
            .await?;
        Ok(json_ok(&Verification {
            verified: failure.is_none(),
            reason: failure.as_ref().map(CheckFailure::code),
            detail: failure.as_ref().map(CheckFailure::message),
            challenge: Challenge::from(after),
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// `DELETE …/domains/{domain}`: withdraws the claim.
pub(super) async fn remove(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, raw) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let domain = path_domain(&raw)?;
        let (tid, actor, d) = (caller.tenant.id.clone(), caller.actor(), domain.clone());
        state
            .store(move |db| db.remove_domain(&tid, &actor, &d))
            .await
            .map_err(super::missing("domain"))?;
        Ok(json_ok(&DomainRemoved {
            deleted: "domain",
            domain,
        }))
    }
    .await
    .map_err(AppError::problem)
}
