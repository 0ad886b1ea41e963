//! The SAML bridge's work outside a request: where a connection's SP key is sealed, and IdP
//! metadata fetched from a URL, for the scheduler's hourly refresh and for
//! `latchkey saml add|refresh-metadata`. New metadata is taken only if it parses, keeps the
//! entity id, has a valid signing certificate and, when the connection pins a metadata-signing
//! certificate, carries a valid signature by it; otherwise the last good metadata stays. A
//! refresh that changes the signing certificates is audited and alerts the tenant's webhook.

use crate::outbound::{self, OutboundPolicy};
use crate::{ServiceError, blocking};
use latchkey_core::{IdpDescriptor, Rng, SamlConnection, SamlOptions, Tenant, ValidationError};
use latchkey_keys::{Aad, KeyRing};
use latchkey_store::{
    CertificatesChanged, Channel, Db, GroupRepo, NewSamlConnection, RoleRepo, SamlRepo, StoreError,
    TenantRepo,
};
use std::sync::Arc;
use std::time::Duration;

/// Metadata refreshes: every hour, again after 10 minutes when one failed.
pub const METADATA_REFRESH_MS: i64 = 3_600_000;
pub const METADATA_RETRY_MS: i64 = 600_000;
/// The largest metadata document fetched or taken (Entra's with every role descriptor is ~60
/// KiB).
pub const METADATA_MAX_BYTES: usize = 1024 * 1024;

/// A connection to make: the IdP's parsed metadata, where it is refreshed from (none for a
/// document given inline or as a file) and the connection's options.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    pub name: String,
    /// Shown on the sign-in page; the name when `None`.
    pub display_name: Option<String>,
    pub idp: IdpDescriptor,
    pub metadata_url: Option<String>,
    pub options: SamlOptions,
}

/// Connects an IdP, for `latchkey saml add` and the admin API alike: a fresh SP key and
/// certificate for the connection, the key sealed under the tenant's data key (row = the
/// connection's id) before the row exists, then the connection stored and audited. Metadata
/// from a URL is refreshed hourly.
pub fn connect(
    db: &Db,
    keys: &KeyRing,
    tenant: &Tenant,
    actor: &str,
    spec: ConnectionSpec,
    now: i64,
) -> Result<SamlConnection, ServiceError> {
    check_options(db, tenant, &spec.options)?;
    let sp = latchkey_saml::generate_sp_key(&format!("{} {} SAML SP", tenant.slug, spec.name), now)
        .map_err(ServiceError::SpKey)?;
    let id = db.new_saml_connection_id();
    let sealed = keys.seal(&tenant.id, sp_key_aad(tenant, &id), &sp.pkcs8_der)?;
    let next_refresh_at = spec.metadata_url.as_ref().map(|_| now + METADATA_REFRESH_MS);
    Ok(db.create_saml_connection(
        &tenant.id,
        actor,
        &NewSamlConnection {
            id,
            display_name: spec.display_name.unwrap_or_else(|| spec.name.clone()),
            name: spec.name,
            idp: spec.idp,
            metadata_url: spec.metadata_url,
            options: spec.options,
            sp_certificate: sp.certificate,
            sp_key_sealed: sealed,
            next_refresh_at,
        },
    )?)
}

/// A certificate given as PEM or as base64 DER, as base64 DER (armour and whitespace dropped).
pub fn certificate_base64(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

/// The rules options keep beyond their shape: the roles of `role_map` and the groups of
/// `group_map` exist in the tenant, and a pinned metadata signer is a certificate whose key
/// signatures can be verified with.
pub fn check_options(db: &Db, tenant: &Tenant, options: &SamlOptions) -> Result<(), ServiceError> {
    let invalid = |field: &'static str, message: String| {
        ServiceError::Store(StoreError::Invalid(ValidationError { field, message }))
    };
    check_maps(db, tenant, &options.role_map, &options.group_map)?;
    if let Some(signer) = &options.metadata_signer {
        latchkey_saml::certs::check_signing_certificate(signer)
            .map_err(|e| invalid("options.metadata_signer", e.to_string()))?;
    }
    Ok(())
}

/// The roles a connection's `role_map` and the groups its `group_map` name (upstream group →
/// role or group) exist in the tenant: for SAML and OpenID Connect connections alike.
pub fn check_maps(
    db: &Db,
    tenant: &Tenant,
    role_map: &[(String, String)],
    group_map: &[(String, String)],
) -> Result<(), ServiceError> {
    let invalid = |field: &'static str, message: String| {
        ServiceError::Store(StoreError::Invalid(ValidationError { field, message }))
    };
    if !role_map.is_empty() {
        let roles: Vec<String> = db.list_roles(&tenant.id)?.into_iter().map(|r| r.name).collect();
        if let Some((_, role)) = role_map.iter().find(|(_, r)| !roles.contains(r)) {
            return Err(invalid(
                "options.role_map",
                format!("no role {role:?} in this tenant"),
            ));
        }
    }
    if !group_map.is_empty() {
        let groups: Vec<String> = db.list_groups(&tenant.id)?.into_iter().map(|g| g.name).collect();
        if let Some((_, group)) = group_map.iter().find(|(_, g)| !groups.contains(g)) {
            return Err(invalid(
                "options.group_map",
                format!("no group {group:?} in this tenant"),
            ));
        }
    }
    Ok(())
}

/// Where a connection's SP private key is sealed (the CLI seals it, the server opens it).
pub fn sp_key_aad<'a>(t: &'a Tenant, connection_id: &'a str) -> Aad<'a> {
    Aad {
        tenant: t.id.as_str(),
        table: "saml_connections",
        column: "sp_key_sealed",
        row: connection_id,
    }
}

/// An IdP metadata URL: https, or http to a loopback host (development and tests); no user
/// information.
pub fn check_metadata_url(u: &str) -> Result<url::Url, ServiceError> {
    let bad = |problem: &'static str| {
        Err(ServiceError::MetadataUrl {
            url: u.to_owned(),
            problem,
        })
    };
    let Ok(parsed) = url::Url::parse(u) else {
        return bad("not an absolute URL");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return bad("must not contain user information");
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return bad("has no host"),
    };
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if loopback => Ok(parsed),
        _ => bad("use https (http only on a loopback address)"),
    }
}

/// Fetches IdP metadata from a URL `check_metadata_url` accepts, through the outbound guard
/// (`outbound::check`: its host's addresses must be public or allowed by `policy`, and the
/// connection goes to the addresses checked): no redirects, 10 seconds, at most 1 MiB.
pub async fn fetch_metadata(policy: &OutboundPolicy, url: &str) -> Result<String, ServiceError> {
    check_metadata_url(url)?;
    let fail = |problem: String| ServiceError::Fetch {
        url: url.to_owned(),
        problem,
    };
    let checked = outbound::check(policy, url, Duration::from_secs(10)).await?;
    let mut res = checked
        .client
        .get(checked.url)
        .send()
        .await
        .map_err(|e| fail(outbound::error_chain(&e)))?;
    if !res.status().is_success() {
        return Err(fail(format!("HTTP {}", res.status().as_u16())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| fail(outbound::error_chain(&e)))? {
        if body.len() + chunk.len() > METADATA_MAX_BYTES {
            return Err(fail(format!("larger than {METADATA_MAX_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| fail("not UTF-8".into()))
}

/// The SHA-256 fingerprints of certificates (base64 DER), as `saml show` prints them.
fn fingerprints(certificates: &[String]) -> Vec<String> {
    certificates
        .iter()
        .map(|c| latchkey_saml::certs::info(c).map_or_else(|e| format!("unreadable: {e}"), |i| i.sha256))
        .collect()
}

/// When `before` and `after` pin different certificate sets: the change, with a webhook call
/// to the tenant's webhook (if it has one), sealed for the outbox.
fn certificates_changed(
    db: &Db,
    keys: &KeyRing,
    rng: &dyn Rng,
    before: &SamlConnection,
    after: &latchkey_core::IdpDescriptor,
    now: i64,
) -> Result<Option<CertificatesChanged>, ServiceError> {
    let (mut old, mut new) = (before.idp.certificates.clone(), after.certificates.clone());
    old.sort();
    new.sort();
    if old == new {
        return Ok(None);
    }
    let (old_sha256, new_sha256) = (
        fingerprints(&before.idp.certificates),
        fingerprints(&after.certificates),
    );
    let tenant = db.tenant(&before.tenant_id)?.ok_or(ServiceError::TenantGone)?;
    let alert = match &tenant.policy.risk.webhook_url {
        Some(url) => {
            let body = serde_json::json!({
                "event": "saml.certificates_changed",
                "tenant": tenant.slug,
                "connection": before.name,
                "connection_id": before.id,
                "at": now,
                "old_sha256": old_sha256,
                "new_sha256": new_sha256,
            })
            .to_string();
            Some(crate::mail::compose(
                keys,
                rng,
                Channel::Webhook,
                &tenant.id,
                url,
                "saml.certificates_changed",
                &body,
            )?)
        }
        None => None,
    };
    Ok(Some(CertificatesChanged {
        old_sha256,
        new_sha256,
        alert,
    }))
}

/// Refreshes connection `c` from its metadata URL, fetched under `outbound` (the URL may be a
/// tenant admin's choice). A refused document (also one without a valid signature by the
/// connection's pinned metadata signer) or a failed fetch leaves the last good metadata in
/// place, records (and audits) the failure and retries sooner; a failed fetch is recorded as
/// `outbound::tenant_view` shows it, the full error is returned for the log. New signing certificates
/// are audited (`saml.certificates_changed`) and sent to the tenant's webhook through the
/// outbox, in the refresh's transaction.
pub async fn refresh_connection(
    db: &Db,
    keys: Arc<KeyRing>,
    rng: Arc<dyn Rng>,
    outbound: &OutboundPolicy,
    c: &SamlConnection,
    now: i64,
) -> Result<SamlConnection, ServiceError> {
    let Some(url) = c.metadata_url.clone() else {
        return Err(ServiceError::NoMetadataUrl);
    };
    let signer = c.options.metadata_signer.clone();
    // Parsing (and verifying a signature over) up to 1 MiB of remote XML is CPU work: off the
    // async threads, like the ACS.
    let fetched = match fetch_metadata(outbound, &url).await {
        Ok(text) => blocking(move || {
            Ok(
                latchkey_saml::parse_idp_metadata_signed_by(&text, now, signer.as_deref())
                    .map_err(|source| ServiceError::MetadataRefused { url, source }),
            )
        })
        .await
        .and_then(|parsed| parsed),
        Err(e) => Err(e),
    }
    .and_then(|idp| {
        if idp.entity_id == c.idp.entity_id {
            Ok(idp)
        } else {
            Err(ServiceError::EntityIdChanged {
                old: c.idp.entity_id.clone(),
                new: idp.entity_id,
            })
        }
    });
    let (db, tid, cid) = (db.clone(), c.tenant_id.clone(), c.id.clone());
    match fetched {
        Ok(idp) => {
            let before = c.clone();
            blocking(move || {
                let change = certificates_changed(&db, &keys, &*rng, &before, &idp, now)?;
                Ok(db.saml_metadata_refreshed(
                    &tid,
                    &cid,
                    &idp,
                    now + METADATA_REFRESH_MS,
                    change.as_ref(),
                )?)
            })
            .await
        }
        Err(why) => {
            // The connection's error and its audit event are the tenant's to read: a failed
            // fetch is recorded without what the network answered (the caller logs `why`).
            let reason = outbound::tenant_view(&why).unwrap_or_else(|| why.to_string());
            blocking(move || Ok(db.saml_metadata_failed(&tid, &cid, &reason, now + METADATA_RETRY_MS)?))
                .await?;
            Err(why)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls_are_https_or_loopback_http() {
        for ok in [
            "https://idp.example.com/metadata",
            "http://127.0.0.1:8000/metadata",
            "http://localhost/m",
            "http://[::1]:9/m",
        ] {
            assert!(check_metadata_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://idp.example.com/metadata",
            "ftp://idp.example.com/m",
            "file:///etc/passwd",
            "https://user:pw@idp.example.com/m",
            "/relative",
            "http://127.0.0.1.evil.example/m",
        ] {
            assert!(check_metadata_url(bad).is_err(), "{bad}");
        }
    }
}
