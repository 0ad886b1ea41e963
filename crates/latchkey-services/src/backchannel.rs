//! OpenID Connect Back-Channel Logout 1.0 delivery. The store queues a notice (client, user,
//! `sid`) in the transaction that ends a session; this makes the logout token when it is sent,
//! so its `iat` is fresh however long the client was down, signs it with the tenant's key for
//! the client's ID-token algorithm, and POSTs it through the outbound guard (§2.5).

use crate::outbound::{self, OutboundPolicy};
use crate::{ServiceError, blocking};
use latchkey_core::{ClientId, Clock, TenantId};
use latchkey_keys::KeyRing;
use latchkey_oidc::logout::{LOGOUT_TOKEN_TYP, LogoutSubject, logout_token_claims};
use latchkey_store::{ClientRepo, Db, QueuedMail, TenantRepo};
use std::sync::Arc;
use std::time::Duration;

/// Makes the notice's logout token; answers it with the client's URI.
fn token_for(
    db: &Db,
    keys: &KeyRing,
    public_url: &str,
    now_secs: i64,
    m: &QueuedMail,
) -> Result<(String, String), ServiceError> {
    let t = TenantId(m.tenant_id.clone());
    let tenant = db.tenant(&t)?.ok_or(ServiceError::TenantGone)?;
    let gone = || {
        ServiceError::Undeliverable(format!(
            "client {} no longer has a backchannel_logout_uri",
            m.recipient
        ))
    };
    let client = db.client(&t, &ClientId(m.recipient.clone()))?.ok_or_else(gone)?;
    let uri = client.settings.backchannel_logout_uri.clone().ok_or_else(gone)?;
    let subject: latchkey_store::LogoutSubject =
        serde_json::from_str(&m.subject).map_err(|e| ServiceError::Undeliverable(format!("notice: {e}")))?;
    // The issuer as `Config::issuer` makes it: `{public_url}/t/{slug}`.
    let issuer = format!("{public_url}/t/{}", tenant.slug);
    // The `sub` the client knows the user by (OIDC Core §8): its pairwise value for a pairwise
    // client; the notice itself keeps the user's id.
    let sub = latchkey_oidc::subject::subject_for(&client, &subject.user, || keys.pairwise_salt(&t))?;
    let who = LogoutSubject {
        sub: &sub,
        sid: subject.sid.as_deref(),
    };
    let claims = logout_token_claims(&issuer, client.client_id.as_str(), who, &m.id, now_secs);
    let token = keys.sign(
        &t,
        latchkey_oidc::tokens::id_token_alg(&client),
        LOGOUT_TOKEN_TYP,
        &claims,
    )?;
    Ok((uri, token))
}

/// POSTs the logout token (§2.5: `application/x-www-form-urlencoded`, `logout_token`). Any 2xx
/// is delivery; anything else is retried with the outbox's back-off.
pub(crate) async fn deliver(
    policy: &OutboundPolicy,
    (db, keys, public_url): (&Db, &Arc<KeyRing>, &str),
    clock: &dyn Clock,
    m: &QueuedMail,
) -> Result<(), ServiceError> {
    let (db, keys, claim, base) = (db.clone(), Arc::clone(keys), m.clone(), public_url.to_owned());
    let now = clock.now_millis() / 1000;
    let (uri, token) = blocking(move || token_for(&db, &keys, &base, now, &claim)).await?;
    // A receiver answers at once (§2.8: it ends its sessions and says 200): 5 s is plenty.
    let checked = outbound::check(policy, &uri, Duration::from_secs(5)).await?;
    let req = checked
        .client
        .post(checked.url)
        .header("cache-control", "no-store")
        .form(&[("logout_token", token.as_str())]);
    crate::mail::delivered(req).await
}
