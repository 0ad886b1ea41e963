//! Realm discovery: the tenant's sign-in connections (SAML and upstream OpenID Connect) shown on
//! the sign-in page, the connection that claims an email domain, and where a sign-in through one
//! starts.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::Tenant;
use latchkey_store::{SamlRepo, UpstreamRepo};

/// What kind of connection a realm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RealmKind {
    Saml,
    Oidc,
}

/// A connection as the sign-in page and home-realm discovery see it.
#[derive(Debug, Clone)]
pub(crate) struct Realm {
    pub kind: RealmKind,
    pub id: String,
    pub name: String,
    pub display_name: String,
    /// Where the browser goes next when home-realm discovery sends it here (the IdP's sign-on
    /// URL, the upstream's authorization endpoint): the sign-in form's `form-action` must allow
    /// it. `None` for a connection that claims no domain.
    pub onward: Option<String>,
}

/// The tenant's connections, for the sign-in page's buttons and home-realm discovery: SAML
/// ones first, each kind by name.
pub(crate) async fn connections(state: &AppState, tenant: &Tenant) -> Result<Vec<Realm>, AppError> {
    let tid = tenant.id.clone();
    state
        .store(move |db| {
            let saml = db.list_saml_connections(&tid)?.into_iter().map(|c| Realm {
                kind: RealmKind::Saml,
                onward: (!c.options.domains.is_empty()).then(|| c.idp.sso_url.clone()),
                id: c.id,
                name: c.name,
                display_name: c.display_name,
            });
            let oidc = db.list_oidc_connections(&tid)?.into_iter().map(|c| Realm {
                kind: RealmKind::Oidc,
                onward: (!c.options.domains.is_empty())
                    .then(|| c.endpoints().map(|e| e.authorization_endpoint))
                    .flatten(),
                id: c.id,
                name: c.name,
                display_name: c.display_name,
            });
            Ok::<_, latchkey_store::StoreError>(saml.chain(oidc).collect())
        })
        .await
}

/// Home-realm discovery: the connection that claims the domain of `name`, an email address (the
/// store keeps a domain to one connection of either kind).
pub(crate) async fn for_email(
    state: &AppState,
    tenant: &Tenant,
    name: &str,
) -> Result<Option<Realm>, AppError> {
    let Some((_, domain)) = name.rsplit_once('@') else {
        return Ok(None);
    };
    if domain.is_empty() || domain.len() > 253 {
        return Ok(None);
    }
    let (tid, d) = (tenant.id.clone(), domain.to_lowercase());
    state
        .store(move |db| {
            if let Some(c) = db.saml_connection_for_domain(&tid, &d)? {
                return Ok(Some(Realm {
                    kind: RealmKind::Saml,
                    onward: Some(c.idp.sso_url.clone()),
                    id: c.id,
                    name: c.name,
                    display_name: c.display_name,
                }));
            }
            Ok::<_, latchkey_store::StoreError>(db.oidc_connection_for_domain(&tid, &d)?.map(|c| Realm {
                kind: RealmKind::Oidc,
                onward: c.endpoints().map(|e| e.authorization_endpoint),
                id: c.id,
                name: c.name,
                display_name: c.display_name,
            }))
        })
        .await
}

/// Where the sign-in page sends a person to sign in with `realm`.
pub(crate) fn start_url(tenant: &Tenant, realm: &Realm, interaction: Option<&str>) -> String {
    match realm.kind {
        RealmKind::Saml => crate::web::urls::saml_login(&tenant.slug, &realm.name, interaction),
        RealmKind::Oidc => crate::web::urls::federation_login(&tenant.slug, &realm.name, interaction),
    }
}
