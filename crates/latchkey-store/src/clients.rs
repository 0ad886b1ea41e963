//! OAuth clients of a tenant. Only the SHA-256 of a client secret is stored.

use crate::db::{Db, from_json, parse_enum, to_json};
use crate::schema::clients;
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::subject::{check_allowed_claims, sector_identifier};
use latchkey_core::{
    AccessTokenFormat, AuthMethod, ClaimsConfig, Client, ClientId, ClientSettings, ClientType, GrantType,
    NewAuditEvent, PreviousSecret, SubjectType, TenantId, UnixMillis, ValidationError, validate,
};
use serde_json::json;

/// A client to register. `secret_hash` is set exactly for confidential clients.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub name: String,
    pub client_type: ClientType,
    pub auth_method: AuthMethod,
    pub secret_hash: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub access_token_format: AccessTokenFormat,
    pub require_pkce: bool,
    pub introspect_others: bool,
    pub first_party: bool,
    pub jwks_uri: Option<String>,
    pub jwks: Option<serde_json::Value>,
    pub settings: ClientSettings,
}

/// The longest a replaced secret may keep working (30 days).
pub const MAX_SECRET_OVERLAP_MS: UnixMillis = 30 * 86_400_000;

pub trait ClientRepo {
    fn create_client(&self, t: &TenantId, actor: &str, new: &NewClient) -> Result<Client>;
    fn client(&self, t: &TenantId, id: &ClientId) -> Result<Option<Client>>;
    fn list_clients(&self, t: &TenantId) -> Result<Vec<Client>>;
    /// One page by `(name, client_id)`: after `after` (the previous page's last pair), at most
    /// `limit` (1 to 1000).
    fn clients_page(&self, t: &TenantId, after: Option<(String, String)>, limit: i64) -> Result<Vec<Client>>;
    /// Replaces the secret's hash (the caller generated and shows the new secret once). With
    /// `overlap_until`, the replaced secret keeps working until then (at most
    /// [`MAX_SECRET_OVERLAP_MS`] ahead); without, it stops at once, as does any older overlap.
    fn set_client_secret_hash(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        hash: &str,
        overlap_until: Option<UnixMillis>,
    ) -> Result<Client>;
    /// Deletes the client. With `if_version` (the `updated_at` the caller read) the delete
    /// itself is conditional: a client changed since, also by a concurrent update, is `Stale`
    /// and stays.
    fn delete_client(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        if_version: Option<UnixMillis>,
    ) -> Result<()>;
    /// Changes a client: `edit` gets it as stored and returns it changed. Its id, tenant,
    /// type, secret and creation time stay whatever `edit` does; the result is checked like a
    /// registration. With `if_version` (the `updated_at` the caller read) a client changed
    /// since is `Stale`, as is one changed by a concurrent update. Audited `client.update` with
    /// each changed field's value before and after (an empty change writes nothing else).
    fn update_client(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        if_version: Option<UnixMillis>,
        edit: &dyn Fn(&Client) -> Result<Client>,
    ) -> Result<Client>;
    /// Replaces what the client's tokens say about users' roles, groups and attributes.
    fn set_client_claims(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        claims: &ClaimsConfig,
    ) -> Result<Client>;
}

fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError {
        field,
        message: message.into(),
    })
}

/// The registration rules that hold whoever registers the client, checked in this order.
fn check(new: &NewClient) -> Result<()> {
    check_values(new)?;
    match new.client_type {
        ClientType::Public => check_public(new)?,
        ClientType::Confidential => check_confidential(new)?,
    }
    check_keys(new)?;
    check_settings(&new.settings)?;
    check_frontchannel(new)?;
    check_subject(new)?;
    check_grants(new)
}

/// OIDC Core §8.1: a pairwise client has one sector (the host of its `sector_identifier_uri`,
/// or the one host of its redirect URIs); a `sector_identifier_uri` is a web URL and means
/// something only for a pairwise client. Whether it lists the redirect URIs is checked by
/// fetching it, before the store is called (`latchkey_services::sector`).
fn check_subject(new: &NewClient) -> Result<()> {
    let s = &new.settings;
    if let Some(uri) = &s.sector_identifier_uri {
        validate::logout_uri("sector_identifier_uri", uri)?;
        if s.subject_type != SubjectType::Pairwise {
            return Err(invalid(
                "sector_identifier_uri",
                "only a pairwise client (subject_type pairwise) has a sector",
            ));
        }
    }
    if s.subject_type == SubjectType::Pairwise {
        sector_identifier(&new.redirect_uris, s.sector_identifier_uri.as_deref())?;
    }
    if let Some(names) = &s.allowed_claims {
        check_allowed_claims(names)?;
    }
    Ok(())
}

/// Front-Channel Logout §2: the URI's scheme, host and port are those of a registered redirect
/// URI, so a client can't have the logout page frame someone else's site.
fn check_frontchannel(new: &NewClient) -> Result<()> {
    let Some(uri) = &new.settings.frontchannel_logout_uri else {
        return Ok(());
    };
    let origin = |u: &str| url::Url::parse(u).ok().map(|u| u.origin().ascii_serialization());
    let wanted = origin(uri);
    if wanted.is_some() && new.redirect_uris.iter().any(|r| origin(r) == wanted) {
        Ok(())
    } else {
        Err(invalid(
            "frontchannel_logout_uri",
            "its scheme, host and port must be those of a registered redirect URI",
        ))
    }
}

/// Name, redirect URIs and scopes are each well-formed.
fn check_values(new: &NewClient) -> Result<()> {
    validate::display_name("name", &new.name)?;
    for u in &new.redirect_uris {
        validate::redirect_uri("redirect_uri", u)?;
    }
    for u in &new.post_logout_redirect_uris {
        validate::redirect_uri("post_logout_redirect_uri", u)?;
    }
    for s in &new.scopes {
        validate::scope(s)?;
    }
    Ok(())
}

/// A public client has no credentials, always uses PKCE and cannot use client_credentials.
fn check_public(new: &NewClient) -> Result<()> {
    if new.auth_method != AuthMethod::None {
        return Err(invalid(
            "auth_method",
            "a public client has no credentials: use none",
        ));
    }
    if new.secret_hash.is_some() {
        return Err(invalid("client_secret", "a public client has no secret"));
    }
    if !new.require_pkce {
        return Err(invalid("require_pkce", "public clients always use PKCE"));
    }
    if new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid("grant", "client_credentials needs a confidential client"));
    }
    Ok(())
}

/// A confidential client authenticates: with registered keys (private_key_jwt) or a secret.
fn check_confidential(new: &NewClient) -> Result<()> {
    let has_keys = new.jwks_uri.is_some() || new.jwks.is_some();
    if new.auth_method == AuthMethod::PrivateKeyJwt && !has_keys {
        return Err(invalid(
            "jwks",
            "private_key_jwt needs the client's public keys: a jwks_uri or a JWK Set",
        ));
    }
    if new.auth_method != AuthMethod::PrivateKeyJwt && has_keys {
        return Err(invalid("jwks", "keys are only registered for private_key_jwt"));
    }
    if new.auth_method == AuthMethod::PrivateKeyJwt && new.secret_hash.is_some() {
        return Err(invalid("client_secret", "a private_key_jwt client has no secret"));
    }
    if new.auth_method == AuthMethod::None {
        return Err(invalid(
            "auth_method",
            "a confidential client must authenticate; use --public for none",
        ));
    }
    if new.secret_hash.is_none() && new.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(invalid(
            "client_secret",
            "missing secret for a secret-based auth method",
        ));
    }
    Ok(())
}

/// Keys are registered one way, only for private_key_jwt, and are a valid https URL or a
/// public JWK Set.
fn check_keys(new: &NewClient) -> Result<()> {
    if new.jwks_uri.is_some() && new.jwks.is_some() {
        return Err(invalid(
            "jwks",
            "register keys either by jwks_uri or by value, not both",
        ));
    }
    if new.auth_method != AuthMethod::PrivateKeyJwt && (new.jwks_uri.is_some() || new.jwks.is_some()) {
        return Err(invalid("jwks", "keys are only registered for private_key_jwt"));
    }
    if let Some(u) = &new.jwks_uri {
        validate::https_url("jwks_uri", u)?;
    }
    if let Some(set) = &new.jwks {
        validate::public_jwk_set(set)?;
    }
    Ok(())
}

/// At most this many resource indicators per client.
const MAX_RESOURCES: usize = 20;

/// A supported ID token algorithm, token lifetimes within bounds, and well-formed resource
/// indicators, each once.
fn check_settings(s: &ClientSettings) -> Result<()> {
    check_resources(&s.resources)?;
    s.claims.validate()?;
    for (field, uri) in [
        ("backchannel_logout_uri", &s.backchannel_logout_uri),
        ("frontchannel_logout_uri", &s.frontchannel_logout_uri),
    ] {
        if let Some(u) = uri {
            validate::logout_uri(field, u)?;
        }
    }
    if s.backchannel_logout_session_required && s.backchannel_logout_uri.is_none() {
        return Err(invalid(
            "backchannel_logout_session_required",
            "needs a backchannel_logout_uri",
        ));
    }
    if s.frontchannel_logout_session_required && s.frontchannel_logout_uri.is_none() {
        return Err(invalid(
            "frontchannel_logout_session_required",
            "needs a frontchannel_logout_uri",
        ));
    }
    if let Some(alg) = &s.id_token_signed_response_alg
        && !["RS256", "ES256", "EdDSA"].contains(&alg.as_str())
    {
        return Err(invalid(
            "id_token_signed_response_alg",
            "one of RS256, ES256, EdDSA",
        ));
    }
    for ttl in [s.access_token_secs, s.id_token_secs].into_iter().flatten() {
        if !(10..=86_400).contains(&ttl) {
            return Err(invalid("lifetime", "token lifetimes are 10 s to 24 h"));
        }
    }
    for ttl in [s.refresh_idle_secs, s.refresh_absolute_secs]
        .into_iter()
        .flatten()
    {
        if !(60..=400 * 86_400).contains(&ttl) {
            return Err(invalid("lifetime", "refresh lifetimes are 1 min to 400 days"));
        }
    }
    Ok(())
}

/// RFC 8707 §2 resource indicators the client may ask for: absolute URIs without fragments.
fn check_resources(resources: &[String]) -> Result<()> {
    if resources.len() > MAX_RESOURCES {
        return Err(invalid(
            "resource",
            format!("at most {MAX_RESOURCES} resource indicators per client"),
        ));
    }
    for (i, r) in resources.iter().enumerate() {
        validate::resource("resource", r)?;
        if resources[..i].contains(r) {
            return Err(invalid("resource", format!("{r:?} is listed twice")));
        }
    }
    Ok(())
}

/// At least one grant; authorization_code with a redirect URI; refresh_token only beside it;
/// resource indicators only with client_credentials.
fn check_grants(new: &NewClient) -> Result<()> {
    if new.grant_types.is_empty() {
        return Err(invalid("grant", "at least one grant type is needed"));
    }
    if new.grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(invalid(
            "redirect_uri",
            "authorization_code needs at least one redirect URI",
        ));
    }
    if new.grant_types.contains(&GrantType::RefreshToken)
        && !new.grant_types.contains(&GrantType::AuthorizationCode)
    {
        return Err(invalid(
            "grant",
            "refresh_token is only issued with authorization_code",
        ));
    }
    if !new.settings.resources.is_empty() && !new.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(invalid(
            "resource",
            "resource indicators are only asked for with client_credentials",
        ));
    }
    Ok(())
}

/// A `clients` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = clients)]
struct Row {
    id: String,
    tenant_id: String,
    name: String,
    secret_hash: Option<String>,
    client_type: String,
    auth_method: String,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    scopes: String,
    access_token_format: String,
    require_pkce: bool,
    introspect_others: bool,
    first_party: bool,
    jwks_uri: Option<String>,
    jwks: Option<String>,
    created_at: i64,
    updated_at: i64,
    settings: String,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
}

fn from_row(r: Row) -> Result<Client> {
    Ok(Client {
        client_id: ClientId(r.id),
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        secret_hash: r.secret_hash,
        previous_secret: r
            .previous_secret_hash
            .zip(r.previous_secret_expires_at)
            .map(|(hash, expires_at)| PreviousSecret { hash, expires_at }),
        client_type: parse_enum("clients.client_type", &r.client_type)?,
        auth_method: parse_enum("clients.auth_method", &r.auth_method)?,
        redirect_uris: from_json("clients.redirect_uris", &r.redirect_uris)?,
        post_logout_redirect_uris: from_json(
            "clients.post_logout_redirect_uris",
            &r.post_logout_redirect_uris,
        )?,
        grant_types: from_json("clients.grant_types", &r.grant_types)?,
        scopes: from_json("clients.scopes", &r.scopes)?,
        access_token_format: parse_enum("clients.access_token_format", &r.access_token_format)?,
        require_pkce: r.require_pkce,
        introspect_others: r.introspect_others,
        first_party: r.first_party,
        jwks_uri: r.jwks_uri,
        jwks: r
            .jwks
            .as_deref()
            .map(|j| from_json("clients.jwks", j))
            .transpose()?,
        settings: from_json("clients.settings", &r.settings)?,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

fn load(c: &mut AnyConnection, t: &TenantId, id: &ClientId) -> Result<Client> {
    clients::table
        .filter(clients::tenant_id.eq(t.as_str()).and(clients::id.eq(id.as_str())))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound { what: "client" })
}

impl From<&Client> for NewClient {
    fn from(c: &Client) -> Self {
        Self {
            name: c.name.clone(),
            client_type: c.client_type,
            auth_method: c.auth_method,
            secret_hash: c.secret_hash.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            scopes: c.scopes.clone(),
            access_token_format: c.access_token_format,
            require_pkce: c.require_pkce,
            introspect_others: c.introspect_others,
            first_party: c.first_party,
            jwks_uri: c.jwks_uri.clone(),
            jwks: c.jwks.clone(),
            settings: c.settings.clone(),
        }
    }
}

/// `after` as an update may make it from `before`: the fixed parts put back, and an
/// authentication change that the client's credentials can follow. Moving to private_key_jwt
/// drops the secrets; moving from it to a secret would need a secret nobody has been shown.
fn follow_update(before: &Client, mut after: Client) -> Result<Client> {
    after.client_id.clone_from(&before.client_id);
    after.tenant_id.clone_from(&before.tenant_id);
    after.client_type = before.client_type;
    after.created_at = before.created_at;
    after.updated_at = before.updated_at;
    after.name = after.name.trim().to_owned();
    after.secret_hash.clone_from(&before.secret_hash);
    after.previous_secret.clone_from(&before.previous_secret);
    if after.auth_method == AuthMethod::PrivateKeyJwt {
        after.secret_hash = None;
        after.previous_secret = None;
    } else if before.auth_method == AuthMethod::PrivateKeyJwt
        && after.auth_method != AuthMethod::PrivateKeyJwt
    {
        return Err(invalid(
            "auth_method",
            "a private_key_jwt client has no secret to switch to: register a new client",
        ));
    }
    check(&NewClient::from(&after))?;
    Ok(after)
}

/// Each field that differs between two client summaries, as `{"field": {"from", "to"}}`.
fn changed(before: &serde_json::Value, after: &serde_json::Value) -> serde_json::Value {
    let empty = serde_json::Map::new();
    let (b, a) = (
        before.as_object().unwrap_or(&empty),
        after.as_object().unwrap_or(&empty),
    );
    let mut out = serde_json::Map::new();
    for key in b.keys().chain(a.keys()) {
        let (from, to) = (b.get(key), a.get(key));
        if from != to && !out.contains_key(key) {
            out.insert(key.clone(), json!({"from": from, "to": to}));
        }
    }
    serde_json::Value::Object(out)
}

/// What an audit event says about a client (never the secret's hash).
fn summary(c: &Client) -> serde_json::Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.remove("created_at");
        o.remove("updated_at");
        o.remove("tenant_id");
    }
    v
}

impl ClientRepo for Db {
    fn create_client(&self, t: &TenantId, actor: &str, new: &NewClient) -> Result<Client> {
        check(new)?;
        let now = self.now();
        let client = Client {
            client_id: ClientId(self.new_id()),
            tenant_id: t.clone(),
            name: new.name.trim().to_owned(),
            secret_hash: new.secret_hash.clone(),
            previous_secret: None,
            client_type: new.client_type,
            auth_method: new.auth_method,
            redirect_uris: new.redirect_uris.clone(),
            post_logout_redirect_uris: new.post_logout_redirect_uris.clone(),
            grant_types: new.grant_types.clone(),
            scopes: new.scopes.clone(),
            access_token_format: new.access_token_format,
            require_pkce: new.require_pkce,
            introspect_others: new.introspect_others,
            first_party: new.first_party,
            jwks_uri: new.jwks_uri.clone(),
            jwks: new.jwks.clone(),
            settings: new.settings.clone(),
            created_at: now,
            updated_at: now,
        };
        self.audited(t, |c| {
            diesel::insert_into(clients::table)
                .values((
                    clients::id.eq(client.client_id.as_str()),
                    clients::tenant_id.eq(t.as_str()),
                    clients::name.eq(&client.name),
                    clients::secret_hash.eq(&client.secret_hash),
                    clients::client_type.eq(client.client_type.as_str()),
                    clients::auth_method.eq(client.auth_method.as_str()),
                    clients::redirect_uris.eq(to_json(&client.redirect_uris)),
                    clients::post_logout_redirect_uris.eq(to_json(&client.post_logout_redirect_uris)),
                    clients::grant_types.eq(to_json(&client.grant_types)),
                    clients::scopes.eq(to_json(&client.scopes)),
                    clients::access_token_format.eq(client.access_token_format.as_str()),
                    clients::require_pkce.eq(client.require_pkce),
                    clients::introspect_others.eq(client.introspect_others),
                    clients::first_party.eq(client.first_party),
                    clients::jwks_uri.eq(&client.jwks_uri),
                    clients::jwks.eq(client.jwks.as_ref().map(to_json)),
                    clients::settings.eq(to_json(&client.settings)),
                    clients::created_at.eq(now),
                    clients::updated_at.eq(now),
                ))
                .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "client.create",
                format!("client:{}", client.client_id),
                summary(&client),
            );
            Ok((client.clone(), event))
        })
    }

    fn client(&self, t: &TenantId, id: &ClientId) -> Result<Option<Client>> {
        let mut conn = self.conn()?;
        match load(&mut conn, t, id) {
            Ok(c) => Ok(Some(c)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn list_clients(&self, t: &TenantId) -> Result<Vec<Client>> {
        let mut conn = self.conn()?;
        clients::table
            .filter(clients::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order((clients::name.asc(), clients::id.asc()))
            .load(&mut *conn)?
            .into_iter()
            .map(from_row)
            .collect()
    }

    fn clients_page(&self, t: &TenantId, after: Option<(String, String)>, limit: i64) -> Result<Vec<Client>> {
        let mut q = clients::table
            .filter(clients::tenant_id.eq(t.as_str()))
            .select(Row::as_select())
            .order((clients::name.asc(), clients::id.asc()))
            .limit(limit.clamp(1, 1000))
            .into_boxed();
        if let Some((name, id)) = after {
            q = q.filter(
                clients::name
                    .gt(name.clone())
                    .or(clients::name.eq(name).and(clients::id.gt(id))),
            );
        }
        q.load(&mut *self.conn()?)?.into_iter().map(from_row).collect()
    }

    fn set_client_secret_hash(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        hash: &str,
        overlap_until: Option<UnixMillis>,
    ) -> Result<Client> {
        let now = self.now();
        if let Some(until) = overlap_until
            && (until <= now || until - now > MAX_SECRET_OVERLAP_MS)
        {
            return Err(invalid(
                "overlap",
                "the old secret's overlap must end in the future, within 30 days",
            ));
        }
        self.audited(t, |c| {
            let mut client = load(c, t, id)?;
            if client.client_type == ClientType::Public || client.secret_hash.is_none() {
                return Err(invalid("client", "this client has no secret to rotate"));
            }
            client.previous_secret = overlap_until
                .zip(client.secret_hash.take())
                .map(|(expires_at, hash)| PreviousSecret { hash, expires_at });
            client.secret_hash = Some(hash.to_owned());
            client.updated_at = now.max(client.updated_at + 1);
            diesel::update(
                clients::table.filter(clients::tenant_id.eq(t.as_str()).and(clients::id.eq(id.as_str()))),
            )
            .set((
                clients::secret_hash.eq(hash),
                clients::previous_secret_hash.eq(client.previous_secret.as_ref().map(|p| &p.hash)),
                clients::previous_secret_expires_at.eq(client.previous_secret.as_ref().map(|p| p.expires_at)),
                clients::updated_at.eq(client.updated_at),
            ))
            .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "client.rotate_secret",
                format!("client:{id}"),
                json!({"previous_secret_expires_at": overlap_until}),
            );
            Ok((client.clone(), event))
        })
    }

    fn set_client_claims(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        claims: &ClaimsConfig,
    ) -> Result<Client> {
        claims.validate()?;
        self.audited(t, |c| {
            let mut client = load(c, t, id)?;
            client.settings.claims = claims.clone();
            client.updated_at = self.now();
            diesel::update(
                clients::table.filter(clients::tenant_id.eq(t.as_str()).and(clients::id.eq(id.as_str()))),
            )
            .set((
                clients::settings.eq(to_json(&client.settings)),
                clients::updated_at.eq(client.updated_at),
            ))
            .execute(c)?;
            let event = NewAuditEvent::success(
                actor,
                "client.update_claims",
                format!("client:{id}"),
                json!({"mappers": claims.mappers.len(), "roles": claims.roles.format, "groups": claims.groups.format}),
            );
            Ok((client.clone(), event))
        })
    }

    fn update_client(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        if_version: Option<UnixMillis>,
        edit: &dyn Fn(&Client) -> Result<Client>,
    ) -> Result<Client> {
        let now = self.now();
        let stale = |v: UnixMillis| StoreError::Stale(format!("client {id} changed since version {v}"));
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(stale(v));
            }
            let mut after = follow_update(&before, edit(&before)?)?;
            let diff = changed(&summary(&before), &summary(&after));
            if diff.as_object().is_some_and(|d| !d.is_empty()) {
                after.updated_at = now.max(before.updated_at + 1);
                let n = diesel::update(
                    clients::table.filter(
                        clients::tenant_id
                            .eq(t.as_str())
                            .and(clients::id.eq(id.as_str()))
                            .and(clients::updated_at.eq(before.updated_at)),
                    ),
                )
                .set((
                    clients::name.eq(&after.name),
                    clients::auth_method.eq(after.auth_method.as_str()),
                    clients::secret_hash.eq(&after.secret_hash),
                    clients::previous_secret_hash.eq(after.previous_secret.as_ref().map(|p| &p.hash)),
                    clients::previous_secret_expires_at
                        .eq(after.previous_secret.as_ref().map(|p| p.expires_at)),
                    clients::redirect_uris.eq(to_json(&after.redirect_uris)),
                    clients::post_logout_redirect_uris.eq(to_json(&after.post_logout_redirect_uris)),
                    clients::grant_types.eq(to_json(&after.grant_types)),
                    clients::scopes.eq(to_json(&after.scopes)),
                    clients::access_token_format.eq(after.access_token_format.as_str()),
                    clients::require_pkce.eq(after.require_pkce),
                    clients::introspect_others.eq(after.introspect_others),
                    clients::first_party.eq(after.first_party),
                    clients::jwks_uri.eq(&after.jwks_uri),
                    clients::jwks.eq(after.jwks.as_ref().map(to_json)),
                    clients::settings.eq(to_json(&after.settings)),
                    clients::updated_at.eq(after.updated_at),
                ))
                .execute(c)?;
                if n == 0 {
                    return Err(stale(before.updated_at));
                }
            }
            let event = NewAuditEvent::success(
                actor,
                "client.update",
                format!("client:{id}"),
                json!({"changed": diff}),
            );
            Ok((after, event))
        })
    }

    fn delete_client(
        &self,
        t: &TenantId,
        actor: &str,
        id: &ClientId,
        if_version: Option<UnixMillis>,
    ) -> Result<()> {
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            let row =
                clients::table.filter(clients::tenant_id.eq(t.as_str()).and(clients::id.eq(id.as_str())));
            // One statement checks the version and deletes: an update committed after the
            // caller (or `load`) read the client makes it match nothing.
            let n = match if_version {
                Some(v) => diesel::delete(row.filter(clients::updated_at.eq(v))).execute(c)?,
                None => diesel::delete(row).execute(c)?,
            };
            if n == 0 {
                let v = if_version.unwrap_or(before.updated_at);
                return Err(StoreError::Stale(format!(
                    "client {id} changed since version {v}"
                )));
            }
            Ok((
                (),
                NewAuditEvent::success(actor, "client.delete", format!("client:{id}"), summary(&before)),
            ))
        })
    }
}
