//! SAML Single Logout, the part features share: when a session that came from a SAML IdP ends
//! in a browser (`/end-session`, the account page's sign-out), the browser is sent on to the
//! IdP with a signed `LogoutRequest` (SP-initiated, HTTP-Redirect), and the IdP's answer comes
//! back to the SLO endpoint of the `saml` feature, which takes the pending record made here and
//! continues where the logout was going.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{SamlConnection, Session, Tenant};
use latchkey_saml::logout::{LogoutRequest, Param, logout_request_xml, redirect};
use latchkey_store::SamlRepo;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long Latchkey waits for the IdP's `LogoutResponse`.
const PENDING_TTL: Duration = Duration::from_secs(600);

/// A logout Latchkey began at an IdP, kept until the IdP answers (keyed by the `RelayState`).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pending {
    pub connection: String,
    pub request_id: String,
    /// Where the browser goes once the IdP answered (a registered post-logout URI with its
    /// `state`, or a page of this tenant).
    pub then: Option<String>,
}

fn pending_key(relay: &str) -> String {
    format!("saml-slo:{relay}")
}

/// The connection's SP private key (PKCS#8), unsealed: it signs AuthnRequests and logout
/// messages.
pub(crate) fn sp_key(
    state: &AppState,
    tenant: &Tenant,
    connection: &SamlConnection,
) -> Result<Vec<u8>, AppError> {
    state
        .keys
        .open_sealed(
            &tenant.id,
            latchkey_services::saml::sp_key_aad(tenant, &connection.id),
            &connection.sp_key_sealed,
        )
        .map_err(|e| AppError::internal("opening a SAML SP key", e))
}

/// The URL that takes the browser to the IdP to end its session too, after `session` (which
/// has ended here) came from a SAML connection whose IdP has a SingleLogoutService; `None`
/// otherwise (a local sign-in, a connection since removed, an IdP without SLO).
pub(crate) async fn begin(
    state: &AppState,
    tenant: &Tenant,
    session: &Session,
    then: Option<String>,
) -> Result<Option<String>, AppError> {
    let Some(f) = session.federated.clone() else {
        return Ok(None);
    };
    let (tid, name) = (tenant.id.clone(), f.connection.clone());
    let found = state
        .store(move |db| db.saml_connection_by_name(&tid, &name))
        .await?;
    let Some(c) = found.filter(|c| c.id == f.connection_id) else {
        return Ok(None);
    };
    let Some(destination) = c.idp.slo_url.clone() else {
        return Ok(None);
    };
    let mut random = [0u8; 16];
    state.rng.fill(&mut random);
    let request_id = latchkey_saml::request_id(&random);
    let relay = latchkey_core::random_token(&*state.rng, 16);
    let (entity_id, _) = crate::web::urls::saml_sp(&state.config.issuer(&tenant.slug), &c.name);
    let xml = logout_request_xml(&LogoutRequest {
        id: &request_id,
        issuer: &entity_id,
        destination: &destination,
        now: state.clock.now_millis(),
        name_id: &f.name_id,
        name_id_format: f.name_id_format.as_deref(),
        session_index: f.session_index.as_deref(),
    })
    .map_err(|e| AppError::internal("a SAML LogoutRequest", e))?;
    let key = sp_key(state, tenant, &c)?;
    let url = redirect(&destination, Param::SamlRequest, &xml, Some(&relay), Some(&key))
        .map_err(|e| AppError::internal("signing a SAML LogoutRequest", e))?;
    let pending = Pending {
        connection: c.name.clone(),
        request_id,
        then,
    };
    let value = serde_json::to_vec(&pending).map_err(|e| AppError::internal("pending logout", e))?;
    state
        .ephemeral
        .put_once(&tenant.id, &pending_key(&relay), &value, PENDING_TTL)
        .await?;
    state.metrics.saml("slo", "sent");
    Ok(Some(url))
}

/// The pending logout a `LogoutResponse`'s `RelayState` names, taken (it finishes once).
pub(crate) async fn take(
    state: &AppState,
    tenant: &Tenant,
    relay: &str,
) -> Result<Option<Pending>, AppError> {
    if relay.is_empty() || relay.len() > 64 {
        return Ok(None);
    }
    let Some(raw) = state.ephemeral.take(&tenant.id, &pending_key(relay)).await? else {
        return Ok(None);
    };
    Ok(serde_json::from_slice(&raw).ok())
}
