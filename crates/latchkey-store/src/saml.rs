//! SAML connections of a tenant (its enterprise IdPs, with Latchkey as service provider) and the
//! identities they sign in as. The SP private key arrives sealed by the caller (row = connection
//! id) and is never written to the audit log. Parsing metadata and checking responses is
//! `latchkey-saml`'s job; this module stores what it decided.

use crate::db::{Db, from_json, to_json};
use crate::identities::saml as ids;
use crate::resets::{NewMail, insert_mail};
use crate::schema::{saml_connections, saml_identities};
use crate::upstream::check_domains_free;
use crate::users::{created, insert_user};
use crate::{AnyConnection, NewUser, Result, StoreError};
use diesel::IntoSql;
use diesel::prelude::*;
use latchkey_core::{
    IdpDescriptor, NewAuditEvent, SamlConnection, SamlOptions, TenantId, UnixMillis, User, UserId,
    ValidationError, validate,
};
use serde_json::json;

/// A connection to create. `id` comes from `SamlRepo::new_saml_connection_id`, so the caller can
/// seal the SP key with the row id as associated data before the row exists.
#[derive(Debug, Clone)]
pub struct NewSamlConnection {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub idp: IdpDescriptor,
    /// Where the metadata is refreshed from; `None` when it came from a file.
    pub metadata_url: Option<String>,
    pub options: SamlOptions,
    /// base64 DER.
    pub sp_certificate: String,
    pub sp_key_sealed: String,
    pub next_refresh_at: Option<UnixMillis>,
}

/// A refresh that changed the IdP's signing certificates: the SHA-256 fingerprints before and
/// after (as `saml show` prints them), and the webhook call that alerts the tenant, if it has
/// a webhook. Recorded as `saml.certificates_changed` in the refresh's transaction.
#[derive(Debug, Clone)]
pub struct CertificatesChanged {
    pub old_sha256: Vec<String>,
    pub new_sha256: Vec<String>,
    pub alert: Option<NewMail>,
}

/// Changes to a connection; `None` keeps a field, `Some(None)` clears it. New metadata (`idp`)
/// clears the last refresh error; clearing `metadata_url` also clears `next_refresh_at`.
#[derive(Debug, Clone, Default)]
pub struct SamlConnectionUpdate {
    pub display_name: Option<String>,
    pub idp: Option<IdpDescriptor>,
    pub metadata_url: Option<Option<String>>,
    pub options: Option<SamlOptions>,
    pub next_refresh_at: Option<Option<UnixMillis>>,
}

pub trait SamlRepo {
    /// A fresh connection id (see `NewSamlConnection::id`).
    fn new_saml_connection_id(&self) -> String;
    /// `Conflict` when the name is taken or a domain is claimed by another connection of the
    /// tenant.
    fn create_saml_connection(
        &self,
        t: &TenantId,
        actor: &str,
        new: &NewSamlConnection,
    ) -> Result<SamlConnection>;
    fn saml_connection(&self, t: &TenantId, id: &str) -> Result<Option<SamlConnection>>;
    fn saml_connection_by_name(&self, t: &TenantId, name: &str) -> Result<Option<SamlConnection>>;
    fn list_saml_connections(&self, t: &TenantId) -> Result<Vec<SamlConnection>>;
    /// Home-realm discovery: the connection claiming `domain` (compared lowercased).
    fn saml_connection_for_domain(&self, t: &TenantId, domain: &str) -> Result<Option<SamlConnection>>;
    fn update_saml_connection(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        change: &SamlConnectionUpdate,
    ) -> Result<SamlConnection> {
        self.update_saml_connection_if(t, actor, id, change, None)
    }
    /// `update_saml_connection` only while the connection's version (`updated_at`) is
    /// `if_version`, else `Stale` with nothing written.
    fn update_saml_connection_if(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        change: &SamlConnectionUpdate,
        if_version: Option<UnixMillis>,
    ) -> Result<SamlConnection>;
    /// Stores freshly fetched metadata and clears the last refresh error; with `certificates`,
    /// also audits the certificate change and queues its alert, in the same transaction.
    fn saml_metadata_refreshed(
        &self,
        t: &TenantId,
        id: &str,
        idp: &IdpDescriptor,
        next_refresh_at: UnixMillis,
        certificates: Option<&CertificatesChanged>,
    ) -> Result<SamlConnection>;
    /// Records a failed refresh; the last good metadata stays in use.
    fn saml_metadata_failed(
        &self,
        t: &TenantId,
        id: &str,
        error: &str,
        next_refresh_at: UnixMillis,
    ) -> Result<()>;
    /// Connections (of any tenant) with a metadata URL whose refresh is due at `now`, at most
    /// `limit`. Each is leased to the caller by moving its `next_refresh_at` to `now + lease_ms`
    /// only if nobody moved it since it was read, so two nodes never claim the same one.
    fn claim_saml_refreshes(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>>;
    /// Removes the connection and (by cascade) its identity links. With `if_version` (the
    /// `updated_at` the caller read) the delete itself is conditional: a connection changed
    /// since (an update, a metadata refresh) is `Stale` and stays.
    fn delete_saml_connection(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
    ) -> Result<()>;
    /// The user a connection's NameID signs in as.
    fn saml_identity(&self, t: &TenantId, connection_id: &str, name_id: &str) -> Result<Option<UserId>>;
    /// `(connection id, NameID)` of every link of the user.
    fn saml_identities_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, String)>>;
    /// Just-in-time provisioning: creates the user and links the NameID to it in one
    /// transaction (a refused user leaves no link).
    fn provision_saml_user(
        &self,
        t: &TenantId,
        connection_id: &str,
        name_id: &str,
        new: &NewUser,
    ) -> Result<User>;
    /// Links a NameID to an existing user; `Conflict` when the NameID is linked already.
    fn link_saml_identity(
        &self,
        t: &TenantId,
        actor: &str,
        connection_id: &str,
        name_id: &str,
        user: &UserId,
    ) -> Result<()>;
    /// Stamps the link's last sign-in.
    fn saml_login_seen(&self, t: &TenantId, connection_id: &str, name_id: &str) -> Result<()>;
    /// The latest sign-in through the connection (`saml_login_seen`), if any.
    fn saml_last_login(&self, t: &TenantId, connection_id: &str) -> Result<Option<i64>>;
}

/// A `saml_connections` row as stored.
#[derive(Queryable, Selectable)]
#[diesel(table_name = saml_connections)]
struct Row {
    tenant_id: String,
    id: String,
    name: String,
    display_name: String,
    idp_entity_id: String,
    sso_url: String,
    sso_binding: String,
    idp_certificates: String,
    wants_signed_requests: bool,
    metadata_url: Option<String>,
    options: String,
    sp_certificate: String,
    sp_key_sealed: String,
    metadata_refreshed_at: Option<i64>,
    metadata_error: Option<String>,
    next_refresh_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
    slo_url: Option<String>,
    slo_response_url: Option<String>,
}

fn from_row(r: Row) -> Result<SamlConnection> {
    Ok(SamlConnection {
        idp: IdpDescriptor {
            entity_id: r.idp_entity_id,
            sso_url: r.sso_url,
            sso_binding: r.sso_binding,
            certificates: from_json("saml_connections.idp_certificates", &r.idp_certificates)?,
            wants_signed_requests: r.wants_signed_requests,
            slo_url: r.slo_url,
            slo_response_url: r.slo_response_url,
        },
        options: from_json("saml_connections.options", &r.options)?,
        id: r.id,
        tenant_id: TenantId(r.tenant_id),
        name: r.name,
        display_name: r.display_name,
        metadata_url: r.metadata_url,
        sp_certificate: r.sp_certificate,
        sp_key_sealed: r.sp_key_sealed,
        metadata_refreshed_at: r.metadata_refreshed_at,
        metadata_error: r.metadata_error,
        next_refresh_at: r.next_refresh_at,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> StoreError {
    StoreError::Invalid(ValidationError {
        field,
        message: message.into(),
    })
}

fn target(id: &str) -> String {
    format!("saml:{id}")
}

/// A DNS name of at least two labels (`a-z`, `0-9`, inner `-`), as home-realm discovery matches
/// it against the part of an address after `@`.
pub(crate) fn domain(s: &str) -> Result<String> {
    let d = s.trim().trim_end_matches('.').to_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if d.len() <= 253 && d.contains('.') && d.split('.').all(label_ok) {
        Ok(d)
    } else {
        Err(invalid("domains", format!("{s:?} is not a domain name")))
    }
}

/// Lowercased, deduplicated, each a plausible domain.
fn normalize_options(o: &SamlOptions) -> Result<SamlOptions> {
    let mut domains = Vec::with_capacity(o.domains.len());
    for d in &o.domains {
        let d = domain(d)?;
        if !domains.contains(&d) {
            domains.push(d);
        }
    }
    Ok(SamlOptions { domains, ..o.clone() })
}

fn check_idp(idp: &IdpDescriptor) -> Result<()> {
    if idp.entity_id.trim().is_empty() {
        return Err(invalid("idp.entity_id", "must not be empty"));
    }
    if idp.sso_url.trim().is_empty() {
        return Err(invalid("idp.sso_url", "must not be empty"));
    }
    if idp.certificates.is_empty() {
        return Err(invalid(
            "idp.certificates",
            "at least one signing certificate is needed to verify responses",
        ));
    }
    Ok(())
}

fn load_all(c: &mut AnyConnection, t: &TenantId) -> Result<Vec<SamlConnection>> {
    saml_connections::table
        .filter(saml_connections::tenant_id.eq(t.as_str()))
        .select(Row::as_select())
        .order(saml_connections::name.asc())
        .load(c)?
        .into_iter()
        .map(from_row)
        .collect()
}

fn load(c: &mut AnyConnection, t: &TenantId, id: &str) -> Result<SamlConnection> {
    saml_connections::table
        .find((t.as_str(), id))
        .select(Row::as_select())
        .first(c)
        .optional()?
        .map(from_row)
        .transpose()?
        .ok_or(StoreError::NotFound {
            what: "SAML connection",
        })
}

fn conflict(e: diesel::result::Error, name: &str) -> StoreError {
    match StoreError::from(e) {
        StoreError::Conflict(_) => StoreError::Conflict(format!(
            "a SAML connection named {name:?} already exists in this tenant"
        )),
        other => other,
    }
}

/// Writes a connection's mutable columns.
/// Writes `s` over its row; with `expect`, only over that version of it (`Stale` otherwise).
fn store(c: &mut AnyConnection, s: &SamlConnection, expect: Option<UnixMillis>) -> Result<()> {
    let version = expect.unwrap_or(-1);
    let n = diesel::update(
        saml_connections::table
            .find((s.tenant_id.as_str(), s.id.as_str()))
            .filter(
                saml_connections::updated_at
                    .eq(version)
                    .or(expect.is_none().into_sql::<diesel::sql_types::Bool>()),
            ),
    )
    .set((
        saml_connections::display_name.eq(&s.display_name),
        saml_connections::idp_entity_id.eq(&s.idp.entity_id),
        saml_connections::sso_url.eq(&s.idp.sso_url),
        saml_connections::sso_binding.eq(&s.idp.sso_binding),
        saml_connections::idp_certificates.eq(to_json(&s.idp.certificates)),
        saml_connections::wants_signed_requests.eq(s.idp.wants_signed_requests),
        saml_connections::slo_url.eq(&s.idp.slo_url),
        saml_connections::slo_response_url.eq(&s.idp.slo_response_url),
        saml_connections::metadata_url.eq(&s.metadata_url),
        saml_connections::options.eq(to_json(&s.options)),
        saml_connections::metadata_refreshed_at.eq(s.metadata_refreshed_at),
        saml_connections::metadata_error.eq(&s.metadata_error),
        saml_connections::next_refresh_at.eq(s.next_refresh_at),
        saml_connections::updated_at.eq(s.updated_at),
    ))
    .execute(c)?;
    if n == 0 {
        return Err(StoreError::Stale(format!(
            "SAML connection {} changed since version {version}",
            s.name
        )));
    }
    Ok(())
}

/// What an audit event shows of a connection: never the sealed key.
fn summary(s: &SamlConnection) -> serde_json::Value {
    json!({
        "name": s.name,
        "display_name": s.display_name,
        "idp_entity_id": s.idp.entity_id,
        "sso_url": s.idp.sso_url,
        "sso_binding": s.idp.sso_binding,
        "slo_url": s.idp.slo_url,
        "certificates": s.idp.certificates.len(),
        "metadata_url": s.metadata_url,
        "options": s.options,
    })
}

/// Before/after of each field of `summary` that differs.
fn changes(before: &SamlConnection, after: &SamlConnection) -> serde_json::Value {
    let (b, a) = (summary(before), summary(after));
    let mut out = serde_json::Map::new();
    if let (Some(b), Some(a)) = (b.as_object(), a.as_object()) {
        for (k, v) in a {
            if b.get(k) != Some(v) {
                out.insert(k.clone(), json!({"before": b.get(k), "after": v}));
            }
        }
    }
    serde_json::Value::Object(out)
}

impl SamlRepo for Db {
    fn new_saml_connection_id(&self) -> String {
        self.new_id()
    }

    fn create_saml_connection(
        &self,
        t: &TenantId,
        actor: &str,
        new: &NewSamlConnection,
    ) -> Result<SamlConnection> {
        validate::slug(&new.name).map_err(|e| invalid("name", e.message))?;
        let display_name = validate::display_name("display_name", &new.display_name)?;
        check_idp(&new.idp)?;
        if new.id.is_empty() || new.sp_key_sealed.is_empty() || new.sp_certificate.is_empty() {
            return Err(invalid(
                "sp_key",
                "the connection needs an id, an SP certificate and its sealed key",
            ));
        }
        let options = normalize_options(&new.options)?;
        let now = self.now();
        let conn = SamlConnection {
            id: new.id.clone(),
            tenant_id: t.clone(),
            name: new.name.clone(),
            display_name,
            idp: new.idp.clone(),
            metadata_url: new.metadata_url.clone(),
            options,
            sp_certificate: new.sp_certificate.clone(),
            sp_key_sealed: new.sp_key_sealed.clone(),
            // Metadata from a URL was fetched just now.
            metadata_refreshed_at: new.metadata_url.as_ref().map(|_| now),
            metadata_error: None,
            next_refresh_at: new.next_refresh_at,
            created_at: now,
            updated_at: now,
        };
        self.audited(t, |c| {
            check_domains_free(c, t, &conn.id, &conn.options.domains)?;
            diesel::insert_into(saml_connections::table)
                .values((
                    saml_connections::tenant_id.eq(t.as_str()),
                    saml_connections::id.eq(&conn.id),
                    saml_connections::name.eq(&conn.name),
                    saml_connections::display_name.eq(&conn.display_name),
                    saml_connections::idp_entity_id.eq(&conn.idp.entity_id),
                    saml_connections::sso_url.eq(&conn.idp.sso_url),
                    saml_connections::sso_binding.eq(&conn.idp.sso_binding),
                    saml_connections::idp_certificates.eq(to_json(&conn.idp.certificates)),
                    saml_connections::wants_signed_requests.eq(conn.idp.wants_signed_requests),
                    saml_connections::slo_url.eq(&conn.idp.slo_url),
                    saml_connections::slo_response_url.eq(&conn.idp.slo_response_url),
                    saml_connections::metadata_url.eq(&conn.metadata_url),
                    saml_connections::options.eq(to_json(&conn.options)),
                    saml_connections::sp_certificate.eq(&conn.sp_certificate),
                    saml_connections::sp_key_sealed.eq(&conn.sp_key_sealed),
                    saml_connections::metadata_refreshed_at.eq(conn.metadata_refreshed_at),
                    saml_connections::next_refresh_at.eq(conn.next_refresh_at),
                    saml_connections::created_at.eq(now),
                    saml_connections::updated_at.eq(now),
                ))
                .execute(c)
                .map_err(|e| conflict(e, &conn.name))?;
            let event =
                NewAuditEvent::success(actor, "saml.connection.create", target(&conn.id), summary(&conn));
            Ok((conn.clone(), event))
        })
    }

    fn saml_connection(&self, t: &TenantId, id: &str) -> Result<Option<SamlConnection>> {
        match load(&mut *self.conn()?, t, id) {
            Ok(s) => Ok(Some(s)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn saml_connection_by_name(&self, t: &TenantId, name: &str) -> Result<Option<SamlConnection>> {
        saml_connections::table
            .filter(
                saml_connections::tenant_id
                    .eq(t.as_str())
                    .and(saml_connections::name.eq(name)),
            )
            .select(Row::as_select())
            .first(&mut *self.conn()?)
            .optional()?
            .map(from_row)
            .transpose()
    }

    fn list_saml_connections(&self, t: &TenantId) -> Result<Vec<SamlConnection>> {
        load_all(&mut *self.conn()?, t)
    }

    fn saml_connection_for_domain(&self, t: &TenantId, domain: &str) -> Result<Option<SamlConnection>> {
        let d = domain.trim().trim_end_matches('.').to_lowercase();
        Ok(self
            .list_saml_connections(t)?
            .into_iter()
            .find(|s| s.options.domains.contains(&d)))
    }

    fn update_saml_connection_if(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        change: &SamlConnectionUpdate,
        if_version: Option<UnixMillis>,
    ) -> Result<SamlConnection> {
        let display_name = change
            .display_name
            .as_deref()
            .map(|n| validate::display_name("display_name", n))
            .transpose()?;
        if let Some(idp) = &change.idp {
            check_idp(idp)?;
        }
        let options = change.options.as_ref().map(normalize_options).transpose()?;
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            if let Some(v) = if_version.filter(|v| *v != before.updated_at) {
                return Err(StoreError::Stale(format!(
                    "SAML connection {} changed since version {v}",
                    before.name
                )));
            }
            let mut after = before.clone();
            if let Some(n) = &display_name {
                after.display_name.clone_from(n);
            }
            let now = self.now();
            if let Some(next) = change.next_refresh_at {
                after.next_refresh_at = next;
            }
            if let Some(url) = &change.metadata_url {
                after.metadata_url.clone_from(url);
                if url.is_none() {
                    after.next_refresh_at = None;
                }
            }
            if let Some(idp) = &change.idp {
                after.idp = idp.clone();
                after.metadata_error = None;
                after.metadata_refreshed_at = after.metadata_url.as_ref().map(|_| now);
            }
            if let Some(o) = &options {
                check_domains_free(c, t, id, &o.domains)?;
                after.options = o.clone();
            }
            after.updated_at = now.max(before.updated_at + 1);
            store(c, &after, if_version.map(|_| before.updated_at))?;
            let event = NewAuditEvent::success(
                actor,
                "saml.connection.update",
                target(id),
                json!({"name": after.name, "changes": changes(&before, &after)}),
            );
            Ok((after, event))
        })
    }

    fn saml_metadata_refreshed(
        &self,
        t: &TenantId,
        id: &str,
        idp: &IdpDescriptor,
        next_refresh_at: UnixMillis,
        certificates: Option<&CertificatesChanged>,
    ) -> Result<SamlConnection> {
        check_idp(idp)?;
        self.audited_all(t, |c| {
            let before = load(c, t, id)?;
            let now = self.now();
            let mut after = before.clone();
            after.idp = idp.clone();
            after.metadata_refreshed_at = Some(now);
            after.metadata_error = None;
            after.next_refresh_at = Some(next_refresh_at);
            after.updated_at = now;
            store(c, &after, None)?;
            let event = NewAuditEvent::success(
                "system",
                "saml.metadata.refresh",
                target(id),
                json!({
                    "name": after.name,
                    "changed": before.idp != after.idp,
                    "changes": changes(&before, &after),
                    "certificates": after.idp.certificates.len(),
                }),
            );
            let mut events = vec![event];
            if let Some(change) = certificates {
                if let Some(mail) = &change.alert {
                    insert_mail(c, t, mail, now)?;
                }
                events.push(NewAuditEvent::success(
                    "system",
                    "saml.certificates_changed",
                    target(id),
                    json!({
                        "connection_id": id,
                        "name": after.name,
                        "old_sha256": change.old_sha256,
                        "new_sha256": change.new_sha256,
                        "alerted": change.alert.is_some(),
                    }),
                ));
            }
            Ok((after, events))
        })
    }

    fn saml_metadata_failed(
        &self,
        t: &TenantId,
        id: &str,
        error: &str,
        next_refresh_at: UnixMillis,
    ) -> Result<()> {
        self.audited(t, |c| {
            let mut s = load(c, t, id)?;
            s.metadata_error = Some(error.to_owned());
            s.next_refresh_at = Some(next_refresh_at);
            store(c, &s, None)?;
            let event = NewAuditEvent::failure(
                "system",
                "saml.metadata.refresh",
                target(id),
                json!({"name": s.name, "metadata_url": s.metadata_url, "error": error}),
            );
            Ok(((), event))
        })
    }

    fn claim_saml_refreshes(
        &self,
        now: UnixMillis,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<(TenantId, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.write(|c| {
            let due: Vec<(String, String, Option<i64>)> = saml_connections::table
                .filter(
                    saml_connections::metadata_url
                        .is_not_null()
                        .and(saml_connections::next_refresh_at.le(now)),
                )
                .select((
                    saml_connections::tenant_id,
                    saml_connections::id,
                    saml_connections::next_refresh_at,
                ))
                .order(saml_connections::next_refresh_at.asc())
                .limit(limit)
                .load(c)?;
            crate::identities::saml_rows::claim(c, due, now, lease_ms)
        })
    }

    fn delete_saml_connection(
        &self,
        t: &TenantId,
        actor: &str,
        id: &str,
        if_version: Option<UnixMillis>,
    ) -> Result<()> {
        self.audited(t, |c| {
            let before = load(c, t, id)?;
            let n = crate::identities::saml_rows::delete(c, t, id, if_version)?;
            if n == 0 {
                let v = if_version.unwrap_or(before.updated_at);
                return Err(StoreError::Stale(format!(
                    "the connection changed since version {v}"
                )));
            }
            let event = NewAuditEvent::success(actor, "saml.connection.delete", target(id), summary(&before));
            Ok(((), event))
        })
    }

    fn saml_identity(&self, t: &TenantId, connection_id: &str, name_id: &str) -> Result<Option<UserId>> {
        let vault = self.personal(t)?;
        ids::lookup(&mut *self.conn()?, &vault, t, (connection_id, name_id))
    }

    fn saml_identities_of_user(&self, t: &TenantId, user: &UserId) -> Result<Vec<(String, String)>> {
        let vault = self.personal(t)?;
        ids::of_user(&mut *self.conn()?, &vault, t, user)
    }

    fn provision_saml_user(
        &self,
        t: &TenantId,
        connection_id: &str,
        name_id: &str,
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
                (connection_id, name_id),
                &user.id,
                user.created_at,
            )?;
            let person = key.person(&user);
            let mut details = created(&person);
            details["source"] = json!("saml");
            details["connection"] = json!(connection_id);
            details["connection_name"] = json!(connection.name);
            details["name_id"] = json!(person.pseudonym("name_id", name_id));
            let event = NewAuditEvent::success(
                &target(connection_id),
                "user.create",
                format!("user:{}", user.id),
                details,
            );
            Ok((user.clone(), event))
        })
    }

    fn link_saml_identity(
        &self,
        t: &TenantId,
        actor: &str,
        connection_id: &str,
        name_id: &str,
        user: &UserId,
    ) -> Result<()> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let connection = load(c, t, connection_id)?;
            ids::insert(c, &vault, t, (connection_id, name_id), user, now).map_err(|e| match e {
                StoreError::BadReference(_) => StoreError::NotFound { what: "user" },
                other => other,
            })?;
            let event = NewAuditEvent::success(
                actor,
                "saml.identity.link",
                format!("user:{user}"),
                json!({"connection": connection_id, "connection_name": connection.name, "name_id": vault.index("audit:name_id", name_id)}),
            );
            Ok(((), event))
        })
    }

    fn saml_login_seen(&self, t: &TenantId, connection_id: &str, name_id: &str) -> Result<()> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.write(|c| ids::seen(c, &vault, t, (connection_id, name_id), now))
    }

    fn saml_last_login(&self, t: &TenantId, connection_id: &str) -> Result<Option<i64>> {
        Ok(saml_identities::table
            .filter(
                saml_identities::tenant_id
                    .eq(t.as_str())
                    .and(saml_identities::connection_id.eq(connection_id)),
            )
            .select(diesel::dsl::max(saml_identities::last_login_at))
            .first(&mut *self.conn()?)?)
    }
}
