//! Upstream OpenID Connect connections of a tenant (Latchkey as relying party toward another
//! provider) and the identities they sign in as. The client secret or `private_key_jwt` key
//! arrives sealed by the caller (row = connection id) and never reaches the audit log.
//! Discovery and token checks are `latchkey-federation`'s; this module stores what they found.

use crate::db::{Db, from_json, to_json};
use crate::identities::oidc as ids;
use crate::saml::{domain, invalid};
use crate::schema::{oidc_connections, saml_connections};
use crate::users::{created, insert_user};
use crate::{AnyConnection, NewUser, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{
    Discovered, NewAuditEvent, OidcConnection, SamlOptions, TenantId, UnixMillis, UpstreamAuth,
    UpstreamEndpoints, UpstreamKind, UpstreamOptions, User, UserId, validate,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The settings kept in the `config` column: everything an operator chooses except the name,
/// the display name and the secret.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Config {
    kind: UpstreamKind,
    issuer: String,
    #[serde(default)]
    discovery_url: Option<String>,
    #[serde(default)]
    allowed_tenant_ids: Vec<String>,
    client_id: String,
    client_auth: UpstreamAuth,
    #[serde(default)]
    public_jwk: Option<String>,
    scopes: Vec<String>,
    #[serde(default)]
    endpoints: Option<UpstreamEndpoints>,
    options: UpstreamOptions,
}

impl Config {
    fn of(c: &OidcConnection) -> Self {
        Config {
            kind: c.kind,
            issuer: c.issuer.clone(),
            discovery_url: c.discovery_url.clone(),
            allowed_tenant_ids: c.allowed_tenant_ids.clone(),
            client_id: c.client_id.clone(),
            client_auth: c.client_auth,
            public_jwk: c.public_jwk.clone(),
            scopes: c.scopes.clone(),
            endpoints: c.endpoints.clone(),
            options: c.options.clone(),
        }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = oidc_connections)]
struct Row {
    tenant_id: String,
    id: String,
    name: String,
    display_name: String,
    config: String,
    secret_sealed: String,
    discovered: Option<String>,
    discovery_error: Option<String>,
    next_refresh_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

fn from_row(r: Row) -> Result<OidcConnection> {
    let cfg: Config = from_json("oidc_connections.config", &r.config)?;
    let discovered: Option<Discovered> = r
        .discovered
        .as_deref()
        .map(|d| from_json("oidc_connections.discovered", d))
        .transpose()?;
    Ok(OidcConnection {
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        display_name: r.display_name,
        kind: cfg.kind,
        issuer: cfg.issuer,
        discovery_url: cfg.discovery_url,
        allowed_tenant_ids: cfg.allowed_tenant_ids,
        client_id: cfg.client_id,
        client_auth: cfg.client_auth,
        secret_sealed: r.secret_sealed,
        public_jwk: cfg.public_jwk,
        scopes: cfg.scopes,
        endpoints: cfg.endpoints,
        options: cfg.options,
        discovered,
        discovery_error: r.discovery_error,
        next_refresh_at: r.next_refresh_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn target(id: &str) -> String {
    format!("oidc:{id}")
}

/// An absolute URL: https, or http to a loopback host (development and tests).
fn endpoint_url(field: &'static str, u: &str) -> Result<()> {
    let parsed = url::Url::parse(u).map_err(|_| invalid(field, format!("{u:?} is not an absolute URL")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() || parsed.fragment().is_some() {
        return Err(invalid(field, "must not contain user information or a fragment"));
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid(field, "has no host")),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(invalid(field, "use https (http only on a loopback address)")),
    }
}

/// What each kind needs: an OpenID Connect connection its issuer (and, for Entra's template,
/// the discovery URL and tenants) and `openid`, never configured endpoints; an OAuth 2.0 one
/// its three endpoints and a secret.
fn check_kind(c: &OidcConnection) -> Result<()> {
    match c.kind {
        UpstreamKind::Oidc => {
            if c.endpoints.is_some() {
                return Err(invalid(
                    "endpoints",
                    "an OpenID Connect connection's endpoints come from discovery",
                ));
            }
            endpoint_url(
                "issuer",
                &c.issuer.replace(latchkey_core::upstream::TENANT_PLACEHOLDER, "t"),
            )?;
            if !c.scopes.iter().any(|s| s == "openid") {
                return Err(invalid(
                    "scopes",
                    "an OpenID Connect connection asks for `openid`",
                ));
            }
            if c.templated() {
                if c.discovery_url.is_none() {
                    return Err(invalid(
                        "discovery_url",
                        "a {tenantid} issuer needs the discovery URL (…/organizations/v2.0/.well-known/openid-configuration)",
                    ));
                }
                if c.allowed_tenant_ids.is_empty() {
                    return Err(invalid(
                        "allowed_tenant_ids",
                        "a {tenantid} issuer needs the tenant ids it accepts",
                    ));
                }
            }
            if let Some(u) = &c.discovery_url {
                endpoint_url("discovery_url", u)?;
            }
        }
        UpstreamKind::Oauth2 => {
            let Some(e) = &c.endpoints else {
                return Err(invalid(
                    "endpoints",
                    "an OAuth 2.0 connection needs its authorization, token and user endpoints",
                ));
            };
            endpoint_url("authorization_endpoint", &e.authorization_endpoint)?;
            endpoint_url("token_endpoint", &e.token_endpoint)?;
            endpoint_url("userinfo_endpoint", &e.userinfo_endpoint)?;
            if c.client_auth == UpstreamAuth::PrivateKeyJwt {
                return Err(invalid("client_auth", "OAuth 2.0 providers take a client secret"));
            }
        }
    }
    Ok(())
}

/// The rules a connection keeps beyond its shape; returns it with its domains normalized.
fn checked(c: &OidcConnection) -> Result<OidcConnection> {
    validate::slug(&c.name).map_err(|e| invalid("name", e.message))?;
    let display_name = validate::display_name("display_name", &c.display_name)?;
    if c.client_id.trim().is_empty() || c.client_id.len() > 255 {
        return Err(invalid("client_id", "must be 1 to 255 characters"));
    }
    if c.secret_sealed.is_empty() {
        return Err(invalid(
            "client_secret",
            "the connection needs a client secret or key",
        ));
    }
    if c.scopes.len() > 32
        || c.scopes
            .iter()
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err(invalid("scopes", "at most 32 scopes, each without spaces"));
    }
    check_kind(c)?;
    if c.allowed_tenant_ids
        .iter()
        .any(|t| t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(invalid("allowed_tenant_ids", "tenant ids are GUIDs"));
    }
    let mut domains = Vec::with_capacity(c.options.domains.len());
    for d in &c.options.domains {
        let d = domain(d)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    let mut out = c.clone();
    out.display_name = display_name;
    out.options.domains = domains;
    Ok(out)
}

/// What defines whose subjects a connection's identities are (the issuer and where its keys
/// are discovered; an OAuth 2.0 provider's endpoints and subject claim): the first of them that
/// differs. Under other values the same subject is someone else, and would sign in as the
/// person linked before.
fn subject_space_change(before: &OidcConnection, after: &OidcConnection) -> Option<&'static str> {
    if after.issuer != before.issuer {
        Some("issuer")
    } else if after.discovery_url != before.discovery_url {
        Some("discovery_url")
    } else if after.endpoints != before.endpoints {
        Some("endpoints")
    } else if after.options.mapping.subject != before.options.mapping.subject {
        Some("options.mapping.subject")
    } else {
        // Entra's allowed tenants may change: subjects are `{tid}:{sub}`.
        None
    }
}

/// Refuses a domain another connection of the tenant, SAML or OpenID Connect, claims (`except`
/// is the connection being written). Runs inside the audited transaction, which holds the
/// tenant's lock, so two concurrent claims can't both pass.
pub(crate) fn check_domains_free(
    c: &mut AnyConnection,
    t: &TenantId,
    except: &str,
    domains: &[String],
) -> Result<()> {
    if domains.is_empty() {
        return Ok(());
    }
    let saml: Vec<(String, String)> = saml_connections::table
        .filter(
            saml_connections::tenant_id
                .eq(t.as_str())
                .and(saml_connections::id.ne(except)),
        )
        .select((saml_connections::name, saml_connections::options))
        .load(c)?;
    for (name, options) in saml {
        let o: SamlOptions = from_json("saml_connections.options", &options)?;
        if let Some(d) = domains.iter().find(|d| o.domains.contains(d)) {
            return Err(StoreError::Conflict(format!(
                "domain {d:?} is already claimed by SAML connection {name:?}"
            )));
        }
    }
    for other in load_all(c, t)?.into_iter().filter(|o| o.id != except) {
        if let Some(d) = domains.iter().find(|d| other.options.domains.contains(d)) {
            return Err(StoreError::Conflict(format!(
                "domain {d:?} is already claimed by OpenID Connect connection {:?}",
                other.name
            )));
        }
    }
    Ok(())
}

fn load_all(c: &mut AnyConnection, t: &TenantId) -> Result<Vec<OidcConnection>> {
    oidc_connections::table
        .filter(oidc_connections::tenant_id.eq(t.as_str()))
        .select(Row::as_select())
        .order(oidc_connections::name.asc())
        .load(c)?
        .into_iter()
        .map(from_row)
        .collect()
}

fn load(c: &mut AnyConnection, t: &TenantId, id: &str) -> Result<OidcConnection> {
    oidc_connections::table
        .find((t.as_str(), id))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound {
            what: "OpenID Connect connection",
        })
}

/// What an audit event shows of a connection: never the sealed secret.
fn summary(s: &OidcConnection) -> serde_json::Value {
    json!({
        "name": s.name,
        "display_name": s.display_name,
        "kind": s.kind,
        "issuer": s.issuer,
        "discovery_url": s.discovery_url,
        "allowed_tenant_ids": s.allowed_tenant_ids,
        "client_id": s.client_id,
        "client_auth": s.client_auth,
        "scopes": s.scopes,
        "endpoints": s.endpoints,
        "options": s.options,
    })
}

/// Before/after of each field of `summary` that differs, and whether the secret changed.
fn changes(before: &OidcConnection, after: &OidcConnection) -> serde_json::Value {
    let (b, a) = (summary(before), summary(after));
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (k, v) in a {
            if b.get(k) != Some(v) {
                out.insert(k.clone(), json!({"before": b.get(k), "after": v}));
            }
        }
    }
    if before.secret_sealed != after.secret_sealed {
        out.insert("secret".into(), json!("replaced"));
    }
    serde_json::Value::Object(out)
}

/// Writes `s` over its row; with `expect`, only over that version (`Stale` otherwise).
fn store(c: &mut AnyConnection, s: &OidcConnection, expect: Option<UnixMillis>) -> Result<()> {
    let row = oidc_connections::table.find((s.tenant_id.as_str(), s.id.as_str()));
    let values = (
        oidc_connections::display_name.eq(&s.display_name),
        oidc_connections::config.eq(to_json(&Config::of(s))),
        oidc_connections::secret_sealed.eq(&s.secret_sealed),
        oidc_connections::discovered.eq(s.discovered.as_ref().map(to_json)),
        oidc_connections::discovery_error.eq(&s.discovery_error),
        oidc_connections::next_refresh_at.eq(s.next_refresh_at),
        oidc_connections::updated_at.eq(s.updated_at),
    );
    let n = match expect {
        Some(v) => diesel::update(row.filter(oidc_connections::updated_at.eq(v)))
            .set(values)
            .execute(c)?,
        None => diesel::update(row).set(values).execute(c)?,
    };
    if n == 0 {
        return Err(StoreError::Stale(format!(
            "OpenID Connect connection {} changed since it was read",
            s.name
        )));
    }
    Ok(())
}

pub trait UpstreamRepo {
    /// A fresh connection id, so the caller can seal the secret with the row id as associated
    /// data before the row exists.
    fn new_oidc_connection_id(&self) -> String;
    /// `Conflict` when the name is taken or a domain is claimed by another connection (SAML
    /// included); `Invalid` when a rule is broken. `c.id` is from `new_oidc_connection_id`.
    fn create_oidc_connection(&self, t: &TenantId, actor: &str, c: &OidcConnection)
    -> Result<OidcConnection>;
    fn oidc_connection(&self, t: &TenantId, id: &str) -> Result<Option<OidcConnection>>;
    fn oidc_connection_by_name(&self, t: &TenantId, name: &str) -> Result<Option<OidcConnection>>;
    fn list_oidc_connections(&self, t: &TenantId) -> Result<Vec<OidcConnection>>;
    /// The connection that claims `domain` (home-realm discovery).
    fn oidc_connection_for_domain(&self, t: &TenantId, domain: &str) -> Result<Option<OidcConnection>>;
    /// Writes `after` (read, then changed by the caller) over its row, audited with the
    /// difference; `if_version` guards against a change made since (`Stale`).
    fn update_oidc_connection(
        &self,
        t: &TenantId,
        actor: &str,
        after: &OidcConnection,
        if_version: Option<UnixMillis>,
    ) -> Result<OidcConnection>;
    /// Records a discovery: the new document and keys, or why it failed (the last good one
    /// stays). Audited only when the outcome or the key ids change, so an hourly refresh of a
    /// healthy connection adds nothing to the chain.
    fn oidc_discovered(
        &self,
        t: &TenantId,
        id: &str,
        outcome: std::result::Result<&Discovered, &str>,
        next_refresh_at: UnixMillis,
    ) -> Result<OidcConnection>;
    /// Due connections (OIDC kind), each leased for `lease_ms` so one node refreshes it.
    fn claim_oidc_refreshes(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>>;
    fn delete_oidc_connection(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
    ) -> Result<()>;
    fn oidc_identity(&self, t: &TenantId, connection_id: &str, subject: &str) -> Result<Option<UserId>>;
    /// (connection id, subject) of every upstream identity of the user.
    fn oidc_identities_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, String)>>;
    /// A new user linked to `subject`, in one audited transaction.
    fn provision_oidc_user(
        &self,
        t: &TenantId,
        connection_id: &str,
        subject: &str,
        new: &NewUser,
    ) -> Result<User>;
    fn link_oidc_identity(
        &self,
        t: &TenantId,
        actor: &str,
        connection_id: &str,
        subject: &str,
        user: &UserId,
    ) -> Result<()>;
    fn oidc_login_seen(&self, t: &TenantId, connection_id: &str, subject: &str) -> Result<()>;
}

/// The key ids of a JWK Set (for the audit event of a key change).
fn key_ids(jwks: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(jwks)
        .ok()
        .and_then(|v| v.get("keys").and_then(|k| k.as_array()).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|k| k.get("kid").and_then(|i| i.as_str()).map(str::to_owned))
        .collect()
}

impl UpstreamRepo for Db {
    fn new_oidc_connection_id(&self) -> String {
        self.new_id()
    }

    fn create_oidc_connection(
        &self,
        t: &TenantId,
        actor: &str,
        new: &OidcConnection,
    ) -> Result<OidcConnection> {
        let mut conn = checked(new)?;
        if conn.id.is_empty() {
            return Err(invalid("id", "the connection needs an id"));
        }
        let now = self.now();
        conn.tenant_id = t.clone();
        conn.created_at = now;
        conn.updated_at = now;
        self.audited(t, |c| {
            check_domains_free(c, t, &conn.id, &conn.options.domains)?;
            diesel::insert_into(oidc_connections::table)
                .values((
                    oidc_connections::tenant_id.eq(t.as_str()),
                    oidc_connections::id.eq(&conn.id),
                    oidc_connections::name.eq(&conn.name),
                    oidc_connections::display_name.eq(&conn.display_name),
                    oidc_connections::config.eq(to_json(&Config::of(&conn))),
                    oidc_connections::secret_sealed.eq(&conn.secret_sealed),
                    oidc_connections::discovered.eq(conn.discovered.as_ref().map(to_json)),
                    oidc_connections::discovery_error.eq(&conn.discovery_error),
                    oidc_connections::next_refresh_at.eq(conn.next_refresh_at),
                    oidc_connections::created_at.eq(now),
                    oidc_connections::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!(
                        "an OpenID Connect connection named {:?} already exists in this tenant",
                        conn.name
                    )),
                    other => other,
                })?;
            let event =
                NewAuditEvent::success(actor, "oidc.connection.create", target(&conn.id), summary(&conn));
            Ok((conn.clone(), event))
        })
    }

    fn oidc_connection(&self, t: &TenantId, id: &str) -> Result<Option<OidcConnection>> {
        match load(&mut *self.conn()?, t, id) {
            Ok(s) => Ok(Some(s)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn oidc_connection_by_name(&self, t: &TenantId, name: &str) -> Result<Option<OidcConnection>> {
        oidc_connections::table
            .filter(
                oidc_connections::tenant_id
                    .eq(t.as_str())
                    .and(oidc_connections::name.eq(name)),
            )
            .select(Row::as_select())
            .first(&mut *self.conn()?)
            .optional()?
            .map(from_row)
            .transpose()
    }

    fn list_oidc_connections(&self, t: &TenantId) -> Result<Vec<OidcConnection>> {
        load_all(&mut *self.conn()?, t)
    }

    fn oidc_connection_for_domain(&self, t: &TenantId, domain: &str) -> Result<Option<OidcConnection>> {
        let d = domain.trim().trim_end_matches('.').to_lowercase();
        Ok(self
            .list_oidc_connections(t)?
            .into_iter()
            .find(|s| s.options.domains.contains(&d)))
    }

    fn update_oidc_connection(
        &self,
        t: &TenantId,
        actor: &str,
        after: &OidcConnection,
        if_version: Option<UnixMillis>,
    ) -> Result<OidcConnection> {
        let mut after = checked(after)?;
        self.audited(t, |c| {
            let before = load(c, t, &after.id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(StoreError::Stale(format!(
                    "OpenID Connect connection {} changed since version {v}",
                    before.name
                )));
            }
            if after.name != before.name {
                return Err(invalid("name", "a connection's name can't change"));
            }
            // Identities are (connection, `sub`): under another issuer the same `sub` is
            // someone else, and would sign in as the person linked before.
            if let Some(field) = subject_space_change(&before, &after)
                && ids::any(c, t, &after.id)?
            {
                return Err(invalid(
                    field,
                    "people have signed in through this connection: where its subjects come from can't change (make a new connection)",
                ));
            }
            check_domains_free(c, t, &after.id, &after.options.domains)?;
            after.tenant_id = t.clone();
            after.created_at = before.created_at;
            after.updated_at = self.now().max(before.updated_at + 1);
            store(c, &after, Some(before.updated_at))?;
            let event = NewAuditEvent::success(
                actor,
                "oidc.connection.update",
                target(&after.id),
                json!({"name": after.name, "changes": changes(&before, &after)}),
            );
            Ok((after.clone(), event))
        })
    }

    fn oidc_discovered(
        &self,
        t: &TenantId,
        id: &str,
        outcome: std::result::Result<&Discovered, &str>,
        next_refresh_at: UnixMillis,
    ) -> Result<OidcConnection> {
        self.audited_all(t, |c| {
            let before = load(c, t, id)?;
            let mut after = before.clone();
            after.next_refresh_at = Some(next_refresh_at);
            // A new version, as a SAML refresh makes: an update read before this refresh gets
            // `Stale` instead of writing the discovery it read back over this one.
            after.updated_at = self.now().max(before.updated_at + 1);
            let mut events = Vec::new();
            match outcome {
                // Discovered for a connection that has changed since (another issuer): kept
                // neither, the next refresh discovers the new one.
                Ok(d) if d.issuer != before.issuer => return Ok((before, events)),
                Ok(d) => {
                    after.discovered = Some(d.clone());
                    after.discovery_error = None;
                    let old = before
                        .discovered
                        .as_ref()
                        .map(|d| key_ids(&d.jwks))
                        .unwrap_or_default();
                    let new = key_ids(&d.jwks);
                    if old != new || before.discovery_error.is_some() {
                        events.push(NewAuditEvent::success(
                            "system",
                            "oidc.discovery",
                            target(id),
                            json!({"name": after.name, "issuer": d.issuer, "old_kids": old, "new_kids": new}),
                        ));
                    }
                }
                Err(e) => {
                    after.discovery_error = Some(e.chars().take(300).collect());
                    if before.discovery_error.as_deref() != Some(e) {
                        events.push(NewAuditEvent::failure(
                            "system",
                            "oidc.discovery",
                            target(id),
                            json!({"name": after.name, "error": after.discovery_error}),
                        ));
                    }
                }
            }
            store(c, &after, None)?;
            Ok((after, events))
        })
    }

    fn claim_oidc_refreshes(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(|c| {
            let due: Vec<(String, String, Option<i64>)> = oidc_connections::table
                .filter(oidc_connections::next_refresh_at.le(now))
                .select((
                    oidc_connections::tenant_id,
                    oidc_connections::id,
                    oidc_connections::next_refresh_at,
                ))
                .order(oidc_connections::next_refresh_at.asc())
                .limit(limit)
                .load(c)?;
            crate::identities::oidc_rows::claim(c, due, now, lease_ms)
        })
    }

    fn delete_oidc_connection(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
    ) -> Result<()> {
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            let n = crate::identities::oidc_rows::delete(c, t, id, if_version)?;
            if n == 0 {
                let v = if_version.unwrap_or(before.updated_at);
                return Err(StoreError::Stale(format!(
                    "the connection changed since version {v}"
                )));
            }
            let event = NewAuditEvent::success(actor, "oidc.connection.delete", target(id), summary(&before));
            Ok(((), event))
        })
    }

    fn oidc_identity(&self, t: &TenantId, connection_id: &str, subject: &str) -> Result<Option<UserId>> {
        let vault = self.personal(t)?;
        ids::lookup(&mut *self.conn()?, &vault, t, (connection_id, subject))
    }

    fn oidc_identities_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, String)>> {
        let vault = self.personal(t)?;
        ids::of_user(&mut *self.conn()?, &vault, t, user)
    }

    fn provision_oidc_user(
        &self,
        t: &TenantId,
        connection_id: &str,
        subject: &str,
        new: &NewUser,
    ) -> Result<User> {
        let user = self.prepare_user(t, new)?;
        let key = self.new_user_key(t, &user.id)?;
        self.audited(t, |c| {
            let connection = load(c, t, connection_id)?;
            insert_user(c, &user, &key)?;
            ids::insert(
                c,
                &key.vault(),
                t,
                (connection_id, subject),
                &user.id,
                user.created_at,
            )?;
            let person = key.person(&user);
            let mut details = created(&person);
            details["source"] = json!("oidc");
            details["connection"] = json!(connection_id);
            details["connection_name"] = json!(connection.name);
            details["subject"] = json!(person.pseudonym("subject", subject));
            let event = NewAuditEvent::success(
                &target(connection_id),
                "user.create",
                format!("user:{}", user.id),
                details,
            );
            Ok((user.clone(), event))
        })
    }

    fn link_oidc_identity(
        &self,
        t: &TenantId,
        actor: &str,
        connection_id: &str,
        subject: &str,
        user: &UserId,
    ) -> Result<()> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let connection = load(c, t, connection_id)?;
            ids::insert(c, &vault, t, (connection_id, subject), user, now).map_err(|e| match e {
                StoreError::BadReference(_) => StoreError::NotFound { what: "user" },
                other => other,
            })?;
            let event = NewAuditEvent::success(
                actor,
                "oidc.identity.link",
                format!("user:{user}"),
                json!({"connection": connection_id, "connection_name": connection.name, "subject": vault.index("audit:subject", subject)}),
            );
            Ok(((), event))
        })
    }

    fn oidc_login_seen(&self, t: &TenantId, connection_id: &str, subject: &str) -> Result<()> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.write(|c| ids::seen(c, &vault, t, (connection_id, subject), now))
    }
}
