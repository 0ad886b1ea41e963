//! A SAML connection's health, for the admin console, `GET …/saml-connections/{name}/health`
//! and `latchkey saml health`: the last metadata refresh, the IdP signing certificates' expiry
//! (flagged 30 days ahead), refused sign-ins of the last 7 days by the audit event's reason,
//! and the last successful sign-in.

use latchkey_core::{Outcome, SamlConnection, TenantId};
use latchkey_store::{AuditFilter, AuditRepo, Db, SamlRepo, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// A certificate this close to its end (or closer) is flagged.
pub const WARN_DAYS: i64 = 30;
/// How far back refused sign-ins are counted.
pub const FAILURE_DAYS: i64 = 7;
const DAY_MS: i64 = 86_400_000;
/// At most this many refusal events are read for the counts.
const MAX_EVENTS: i64 = 10_000;

/// A connection's health.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Health {
    pub connection: String,
    pub metadata: MetadataHealth,
    /// The IdP's signing certificates.
    pub certificates: Vec<CertificateHealth>,
    /// Refused sign-ins (`saml.acs` failures) of the last 7 days.
    pub failures: Failures,
    /// The latest successful sign-in through the connection (Unix ms).
    pub last_sign_in_at: Option<i64>,
    /// Whether anything needs the administrator: a failed refresh or a flagged certificate.
    pub attention: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct MetadataHealth {
    /// `null` for metadata given inline (never refreshed).
    pub url: Option<String>,
    /// `ok`, `failed` (the last good metadata stays in use) or `inline`.
    pub outcome: &'static str,
    /// When the metadata was last fetched successfully (Unix ms).
    pub refreshed_at: Option<i64>,
    /// Why the last refresh failed.
    pub error: Option<String>,
    pub next_refresh_at: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CertificateHealth {
    pub subject: Option<String>,
    /// SHA-256 of the DER, hex with colons.
    pub sha256: Option<String>,
    pub not_after: Option<i64>,
    /// Whole days until `not_after` (negative once past).
    pub days_left: Option<i64>,
    /// Fewer than 30 days left, expired, or unreadable.
    pub warning: bool,
    pub expired: bool,
    /// Why the certificate could not be read.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Failures {
    /// The start of the window (Unix ms).
    pub since: i64,
    pub total: u64,
    /// Refusals by the audit event's reason code (`audience`, `unsigned`, …).
    pub by_reason: BTreeMap<String, u64>,
}

/// The expiry of one IdP certificate (base64 DER) at `now`.
pub fn certificate_health(der: &str, now: i64) -> CertificateHealth {
    match latchkey_saml::certs::info(der) {
        Ok(i) => {
            let expired = i.not_after <= now;
            CertificateHealth {
                subject: Some(i.subject),
                sha256: Some(i.sha256),
                not_after: Some(i.not_after),
                days_left: Some((i.not_after - now).div_euclid(DAY_MS)),
                warning: expired || i.not_after - now < WARN_DAYS * DAY_MS,
                expired,
                error: None,
            }
        }
        Err(e) => CertificateHealth {
            subject: None,
            sha256: None,
            not_after: None,
            days_left: None,
            warning: true,
            expired: false,
            error: Some(e.to_string()),
        },
    }
}

/// The health of connection `c` of tenant `t` at `now`, from the connection, the tenant's
/// audit chain and its identity links.
///
/// # Errors
/// The store's.
pub fn connection_health(db: &Db, t: &TenantId, c: &SamlConnection, now: i64) -> Result<Health, StoreError> {
    let since = now - FAILURE_DAYS * DAY_MS;
    let filter = AuditFilter {
        action: Some("saml.acs".into()),
        since: Some(since),
        target: Some(format!("saml:{}", c.id)),
        ..AuditFilter::default()
    };
    let mut by_reason = BTreeMap::new();
    for e in db
        .audit_search(t, &filter, 0, MAX_EVENTS)?
        .iter()
        .filter(|e| e.outcome == Outcome::Failure)
    {
        let reason = e.details["reason"].as_str().unwrap_or("unknown").to_owned();
        *by_reason.entry(reason).or_insert(0u64) += 1;
    }
    let certificates: Vec<CertificateHealth> = c
        .idp
        .certificates
        .iter()
        .map(|der| certificate_health(der, now))
        .collect();
    let outcome = match (&c.metadata_url, &c.metadata_error) {
        (None, _) => "inline",
        (Some(_), Some(_)) => "failed",
        (Some(_), None) => "ok",
    };
    Ok(Health {
        connection: c.name.clone(),
        attention: outcome == "failed" || certificates.iter().any(|x| x.warning),
        metadata: MetadataHealth {
            url: c.metadata_url.clone(),
            outcome,
            refreshed_at: c.metadata_refreshed_at,
            error: c.metadata_error.clone(),
            next_refresh_at: c.next_refresh_at,
        },
        certificates,
        failures: Failures {
            since,
            total: by_reason.values().sum(),
            by_reason,
        },
        last_sign_in_at: db.saml_last_login(t, &c.id)?,
    })
}
