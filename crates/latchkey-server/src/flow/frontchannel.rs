//! Front-Channel Logout 1.0: when a session ends in a browser (`/end-session`, the account
//! page's sign-out, a SAML IdP's logout), the signed-out page loads the front-channel URI of
//! every client that got tokens in that session in a hidden iframe, then goes on. Its CSP
//! allows framing exactly those origins.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use crate::web::i18n::Strings;
use crate::web::respond::{html, logo};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use latchkey_core::{ClientId, Tenant, UserId};
use latchkey_store::{ClientRepo, OAuthRepo};

#[derive(Template)]
#[template(path = "frontchannel_logout.html")]
struct FrontchannelPage<'a> {
    s: &'a Strings,
    slug: &'a str,
    tenant_name: &'a str,
    logo_url: Option<&'a str>,
    frames: &'a [String],
    next: Option<String>,
}

/// §2: the front-channel URIs of the clients that got tokens in the session `key` (read before
/// its grants are revoked), with `iss` and `sid` where they asked for them.
pub(crate) async fn urls(
    state: &AppState,
    tenant: &Tenant,
    user: &UserId,
    key: &str,
) -> Result<Vec<String>, AppError> {
    let (tid, uid, key) = (tenant.id.clone(), user.clone(), key.to_owned());
    let sid = latchkey_core::sid_of(&key);
    let clients = state
        .store(move |db| {
            let mut ids: Vec<ClientId> = db
                .live_grants(&tid, &uid)?
                .into_iter()
                .filter(|g| g.session_key.as_deref() == Some(key.as_str()))
                .map(|g| g.client_id)
                .collect();
            ids.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
            ids.dedup();
            let mut found = Vec::new();
            for id in ids {
                found.extend(db.client(&tid, &id)?);
            }
            Ok::<_, latchkey_store::StoreError>(found)
        })
        .await?;
    let iss = state.config.issuer(&tenant.slug);
    Ok(clients
        .iter()
        .filter_map(|c| latchkey_oidc::logout::frontchannel_url(c, &iss, Some(&sid)))
        .collect())
}

/// The signed-out page that loads `frames`, then goes on to `next` (the IdP's logout, or the
/// post-logout redirect), if any.
pub(crate) fn page(
    state: &AppState,
    req: &HttpRequest,
    t: &Tenant,
    strings: &'static Strings,
    frames: &[String],
    next: Option<String>,
) -> Result<HttpResponse, AppError> {
    let page = FrontchannelPage {
        s: strings,
        slug: &t.slug,
        tenant_name: &t.display_name,
        logo_url: logo(t),
        frames,
        next,
    };
    let mut res = html(state, req, StatusCode::OK, page.render())?;
    crate::web::observe::allow_frames(&mut res, frames);
    Ok(res)
}
