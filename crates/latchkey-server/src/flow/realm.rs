//! Realm discovery: the tenant's SAML connections shown on the sign-in page, the connection that
//! claims an email domain, and where a sign-in through one starts.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{SamlConnection, Tenant};
use latchkey_store::SamlRepo;

/// The tenant's connections, for the sign-in page's buttons and home-realm discovery.
pub(crate) async fn connections(state: &AppState, tenant: &Tenant) -> Result<Vec<SamlConnection>, AppError> {
    let tid = tenant.id.clone();
    state.store(move |db| db.list_saml_connections(&tid)).await
}

/// Home-realm discovery: the connection that claims the domain of `name`, an email address.
pub(crate) async fn for_email(
    state: &AppState,
    tenant: &Tenant,
    name: &str,
) -> Result<Option<SamlConnection>, AppError> {
    let Some((_, domain)) = name.rsplit_once('@') else {
        return Ok(None);
    };
    if domain.is_empty() || domain.len() > 253 {
        return Ok(None);
    }
    let (tid, d) = (tenant.id.clone(), domain.to_lowercase());
    state
        .store(move |db| db.saml_connection_for_domain(&tid, &d))
        .await
}

/// Where the sign-in page sends a person to sign in with `c`.
pub(crate) fn start_url(tenant: &Tenant, connection: &SamlConnection, interaction: Option<&str>) -> String {
    crate::web::urls::saml_login(&tenant.slug, &connection.name, interaction)
}
