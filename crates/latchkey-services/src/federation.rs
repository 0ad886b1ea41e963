//! Upstream OpenID Connect connections without an HTTP server: connecting one (sealing its
//! secret or making its `private_key_jwt` key, discovery first), discovery and JWK Set fetches,
//! the hourly refresh, and the calls a sign-in makes upstream (token and user endpoints). Every
//! request goes through the outbound guard (`outbound::check`): the URLs are a tenant's choice.

use crate::outbound::{self, OutboundPolicy};
use crate::{ServiceError, blocking};
use latchkey_core::{
    Discovered, OidcConnection, Tenant, UpstreamAuth, UpstreamEndpoints, UpstreamKind, UpstreamOptions,
};
use latchkey_federation::{FederationError, MAX_DOCUMENT_BYTES, TokenRequest, TokenResponse};
use latchkey_keys::{Aad, Alg, KeyRing, SigningKey};
use latchkey_store::{Db, UpstreamRepo};
use std::time::Duration;

/// Discovery is read again this often, and sooner after a failure.
pub const DISCOVERY_REFRESH_MS: i64 = 3_600_000;
pub const DISCOVERY_RETRY_MS: i64 = 600_000;
/// Each upstream call's limit.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to make, for `latchkey oidc-connection add` and the admin API alike.
#[derive(Debug, Clone)]
pub struct ConnectionSpec {
    pub name: String,
    /// Shown on the sign-in page; the name when `None`.
    pub display_name: Option<String>,
    pub kind: UpstreamKind,
    pub issuer: String,
    pub discovery_url: Option<String>,
    pub allowed_tenant_ids: Vec<String>,
    pub client_id: String,
    pub client_auth: UpstreamAuth,
    /// Required for the secret methods; ignored for `private_key_jwt` (a key is made).
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    pub endpoints: Option<UpstreamEndpoints>,
    pub options: UpstreamOptions,
}

/// Where a connection's secret or key is sealed.
pub fn secret_aad<'a>(t: &'a Tenant, connection_id: &'a str) -> Aad<'a> {
    Aad {
        tenant: t.id.as_str(),
        table: "oidc_connections",
        column: "secret_sealed",
        row: connection_id,
    }
}

/// The credential a connection holds, opened.
pub enum Opened {
    Secret(String),
    Key(SigningKey),
}

/// Opens a connection's sealed secret or key.
pub fn open_credential(keys: &KeyRing, t: &Tenant, c: &OidcConnection) -> Result<Opened, ServiceError> {
    let plain = keys.open_sealed(&t.id, secret_aad(t, &c.id), &c.secret_sealed)?;
    Ok(match c.client_auth {
        UpstreamAuth::PrivateKeyJwt => Opened::Key(SigningKey::from_pkcs8(Alg::RS256, &plain)?),
        _ => Opened::Secret(String::from_utf8(plain).map_err(|_| {
            ServiceError::Keys(latchkey_keys::KeyError::Crypto(
                "the client secret is not UTF-8".into(),
            ))
        })?),
    })
}

/// Seals `secret`, or for `private_key_jwt` a fresh RS256 key, for connection `id`; returns the
/// sealed value and the public JWK to publish.
pub fn seal_credential(
    keys: &KeyRing,
    t: &Tenant,
    id: &str,
    auth: UpstreamAuth,
    secret: Option<&str>,
) -> Result<(String, Option<String>), ServiceError> {
    let invalid = |message: &str| {
        ServiceError::Store(latchkey_store::StoreError::Invalid(
            latchkey_core::ValidationError {
                field: "client_secret",
                message: message.into(),
            },
        ))
    };
    if auth == UpstreamAuth::PrivateKeyJwt {
        let (key, pkcs8) = SigningKey::generate(Alg::RS256)?;
        let mut jwk = key.public_jwk();
        jwk["kid"] = serde_json::Value::String(key.kid());
        jwk["alg"] = serde_json::Value::String("RS256".into());
        jwk["use"] = serde_json::Value::String("sig".into());
        return Ok((
            keys.seal(&t.id, secret_aad(t, id), &pkcs8)?,
            Some(jwk.to_string()),
        ));
    }
    let s = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("a client secret is required"))?;
    if s.len() > 1024 {
        return Err(invalid("at most 1024 bytes"));
    }
    Ok((keys.seal(&t.id, secret_aad(t, id), s.as_bytes())?, None))
}

/// Makes the connection: discovery first (an OIDC connection that can't be discovered is
/// refused with the reason, not stored broken), then the credential sealed under the row's id,
/// then the row, audited.
pub async fn connect(
    db: &Db,
    keys: &std::sync::Arc<KeyRing>,
    policy: &OutboundPolicy,
    tenant: &Tenant,
    actor: &str,
    spec: ConnectionSpec,
    now: i64,
) -> Result<OidcConnection, ServiceError> {
    let (checking, t, options) = (db.clone(), tenant.clone(), spec.options.clone());
    blocking(move || check_options(&checking, &t, &options)).await?;
    let mut c = OidcConnection {
        id: db.new_oidc_connection_id(),
        tenant_id: tenant.id.clone(),
        display_name: spec.display_name.unwrap_or_else(|| spec.name.clone()),
        name: spec.name,
        kind: spec.kind,
        // As given: Discovery §4.3 compares issuers exactly, and some end in `/` (Auth0).
        issuer: spec.issuer,
        discovery_url: spec.discovery_url,
        allowed_tenant_ids: spec.allowed_tenant_ids,
        client_id: spec.client_id,
        client_auth: spec.client_auth,
        secret_sealed: String::new(),
        public_jwk: None,
        scopes: spec.scopes,
        endpoints: spec.endpoints,
        options: spec.options,
        discovered: None,
        discovery_error: None,
        next_refresh_at: None,
        created_at: now,
        updated_at: now,
    };
    if c.kind == UpstreamKind::Oidc {
        c.discovered = Some(discover(policy, &c, now).await?);
        c.next_refresh_at = Some(now + DISCOVERY_REFRESH_MS);
    }
    let (ring, t, actor, secret) = (keys.clone(), tenant.clone(), actor.to_owned(), spec.client_secret);
    let db = db.clone();
    // The key ring reads the tenant's data key from the store, and an RSA key takes a while to
    // make: both off the async threads.
    blocking(move || {
        let (sealed, jwk) = seal_credential(&ring, &t, &c.id, c.client_auth, secret.as_deref())?;
        c.secret_sealed = sealed;
        c.public_jwk = jwk;
        Ok(db.create_oidc_connection(&t.id, &actor, &c)?)
    })
    .await
}

/// The rules options keep beyond their shape: the roles of `role_map` and the groups of
/// `group_map` exist in the tenant (as a SAML connection's), and the attributes of
/// `attribute_map` are in its schema.
pub fn check_options(db: &Db, tenant: &Tenant, options: &UpstreamOptions) -> Result<(), ServiceError> {
    crate::saml::check_maps(db, tenant, &options.role_map, &options.group_map)?;
    if !options.attribute_map.is_empty() {
        let defs = latchkey_store::AttributeRepo::attribute_defs(db, &tenant.id)?;
        if let Some((_, name)) = options
            .attribute_map
            .iter()
            .find(|(_, a)| !defs.iter().any(|d| &d.name == a))
        {
            return Err(ServiceError::Store(latchkey_store::StoreError::Invalid(
                latchkey_core::ValidationError {
                    field: "options.attribute_map",
                    message: format!("no attribute {name:?} in this tenant"),
                },
            )));
        }
    }
    Ok(())
}

/// Whether a refresh found anything new: the discoveries of `before` and `after` differ in more
/// than when they were made.
pub fn discovery_changed(before: &OidcConnection, after: &OidcConnection) -> bool {
    let found = |c: &OidcConnection| {
        c.discovered.clone().map(|mut d| {
            d.refreshed_at = 0;
            d
        })
    };
    found(before) != found(after)
}

/// Makes `after` (the connection `before` as read, then changed by the caller: `latchkey
/// oidc-connection update`'s flags, the admin API's merge patch) ready to store with
/// `update_oidc_connection` under `before`'s version. An OpenID Connect connection whose issuer
/// or discovery URL changed is discovered again now (a failure changes nothing); the credential
/// is sealed again for a new `secret`, or a key made when the method becomes `private_key_jwt`
/// (leaving it needs a secret); otherwise the sealed credential and public key stay.
pub async fn prepare_update(
    keys: &std::sync::Arc<KeyRing>,
    policy: &OutboundPolicy,
    tenant: &Tenant,
    before: &OidcConnection,
    mut after: OidcConnection,
    secret: Option<String>,
    now: i64,
) -> Result<OidcConnection, ServiceError> {
    let invalid = |field: &'static str, message: &str| {
        ServiceError::Store(latchkey_store::StoreError::Invalid(
            latchkey_core::ValidationError {
                field,
                message: message.into(),
            },
        ))
    };
    if after.kind != before.kind {
        return Err(invalid("kind", "a connection's kind can't change"));
    }
    if after.client_auth == UpstreamAuth::PrivateKeyJwt && secret.is_some() {
        return Err(invalid(
            "client_secret",
            "private_key_jwt signs with the connection's own key: it takes no secret",
        ));
    }
    after.secret_sealed.clone_from(&before.secret_sealed);
    after.public_jwk.clone_from(&before.public_jwk);
    if after.kind == UpstreamKind::Oidc
        && (after.issuer != before.issuer || after.discovery_url != before.discovery_url)
    {
        after.discovered = Some(discover(policy, &after, now).await?);
        after.discovery_error = None;
        after.next_refresh_at = Some(now + DISCOVERY_REFRESH_MS);
    }
    let key_change = after.client_auth != before.client_auth
        && (after.client_auth == UpstreamAuth::PrivateKeyJwt
            || before.client_auth == UpstreamAuth::PrivateKeyJwt);
    if secret.is_some() || key_change {
        let (ring, t, id, auth) = (keys.clone(), tenant.clone(), after.id.clone(), after.client_auth);
        let (sealed, jwk) =
            blocking(move || seal_credential(&ring, &t, &id, auth, secret.as_deref())).await?;
        after.secret_sealed = sealed;
        after.public_jwk = jwk;
    }
    Ok(after)
}

/// GET `url` through the guard, at most `MAX_DOCUMENT_BYTES`, with `Accept` and an optional
/// bearer token; returns the status and body.
async fn get(
    policy: &OutboundPolicy,
    url: &str,
    bearer: Option<&str>,
) -> Result<(u16, Vec<u8>), ServiceError> {
    let checked = outbound::check(policy, url, TIMEOUT).await?;
    let mut req = checked
        .client
        .get(checked.url)
        .header("accept", "application/json");
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    read(url, req).await
}

async fn read(url: &str, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), ServiceError> {
    let fail = |problem: String| ServiceError::Fetch {
        url: url.to_owned(),
        problem,
    };
    let mut res = req.send().await.map_err(|e| fail(outbound::error_chain(&e)))?;
    let status = res.status().as_u16();
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| fail(outbound::error_chain(&e)))? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(fail(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

async fn get_ok(policy: &OutboundPolicy, url: &str) -> Result<Vec<u8>, ServiceError> {
    let (status, body) = get(policy, url, None).await?;
    if !(200..300).contains(&status) {
        return Err(ServiceError::Fetch {
            url: url.to_owned(),
            problem: format!("HTTP {status}"),
        });
    }
    Ok(body)
}

/// Reads the connection's discovery document and its JWK Set.
pub async fn discover(
    policy: &OutboundPolicy,
    c: &OidcConnection,
    now: i64,
) -> Result<Discovered, ServiceError> {
    let location = c.discovery_location();
    latchkey_federation::check_endpoint("discovery URL", &location)?;
    let doc = get_ok(policy, &location).await?;
    let found = latchkey_federation::read_discovery(&doc, &c.issuer, now)?;
    let jwks = get_ok(policy, &found.jwks_uri).await?;
    Ok(latchkey_federation::with_jwks(found, &jwks)?)
}

/// Reads the JWK Set again (a token named a key it did not hold: the upstream rotated).
pub async fn refetch_jwks(
    policy: &OutboundPolicy,
    d: &Discovered,
    now: i64,
) -> Result<Discovered, ServiceError> {
    let jwks = get_ok(policy, &d.jwks_uri).await?;
    let mut fresh = latchkey_federation::with_jwks(d.clone(), &jwks)?;
    fresh.refreshed_at = now;
    Ok(fresh)
}

/// Discovers again and records the outcome (a failure keeps the last good document and retries
/// sooner). Returns the error for the log, after recording what the tenant may read of it.
pub async fn refresh(
    db: &Db,
    policy: &OutboundPolicy,
    c: &OidcConnection,
    now: i64,
) -> Result<OidcConnection, ServiceError> {
    let outcome = discover(policy, c, now).await;
    let (db, tid, cid) = (db.clone(), c.tenant_id.clone(), c.id.clone());
    match outcome {
        Ok(d) => {
            blocking(move || Ok(db.oidc_discovered(&tid, &cid, Ok(&d), now + DISCOVERY_REFRESH_MS)?)).await
        }
        Err(why) => {
            let reason = outbound::tenant_view(&why).unwrap_or_else(|| why.to_string());
            blocking(move || Ok(db.oidc_discovered(&tid, &cid, Err(&reason), now + DISCOVERY_RETRY_MS)?))
                .await?;
            Err(why)
        }
    }
}

/// POSTs the token request and reads the answer.
pub async fn exchange(
    policy: &OutboundPolicy,
    token_endpoint: &str,
    req: &TokenRequest,
) -> Result<TokenResponse, ServiceError> {
    let checked = outbound::check(policy, token_endpoint, TIMEOUT).await?;
    let mut builder = checked
        .client
        .post(checked.url)
        .header("accept", "application/json")
        .form(&req.form);
    if let Some(a) = &req.authorization {
        builder = builder.header("authorization", a);
    }
    let (status, body) = read(token_endpoint, builder).await?;
    Ok(latchkey_federation::parse_token_response(status, &body)?)
}

/// The user endpoint's JSON object for `access_token`.
pub async fn userinfo(
    policy: &OutboundPolicy,
    url: &str,
    access_token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ServiceError> {
    let (status, body) = get(policy, url, Some(access_token)).await?;
    if !(200..300).contains(&status) {
        return Err(ServiceError::Federation(FederationError::TokenResponse(format!(
            "the user endpoint answered HTTP {status}"
        ))));
    }
    serde_json::from_slice(&body).map_err(|_| {
        ServiceError::Federation(FederationError::TokenResponse(
            "the user endpoint did not answer a JSON object (signed UserInfo is not supported)".into(),
        ))
    })
}
