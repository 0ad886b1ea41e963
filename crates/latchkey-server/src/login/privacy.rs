//! The account page's privacy parts (docs/privacy.md): downloading one's data, and the list of
//! one's own recent security activity read from the audit chain.

use super::account::{account_form, when};
use super::{AppError, strings};
use crate::state::AppState;
use crate::web::form::FormParams;
use crate::web::i18n_privacy::{self, PrivacyStrings};
use crate::web::tenant::InTenant;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, Tenant, User};
use std::time::Duration;

/// Downloads a person may make per hour: an export reads all their events, so it is bounded.
const EXPORTS_PER_HOUR: u64 = 5;

/// POST `/t/{tenant}/account/export`: the person's data as a JSON download (CSRF-checked, so
/// no other site can make the browser fetch it; audited as `user.export`).
pub(super) async fn download(
    req: HttpRequest,
    InTenant(t): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (t, _, user) = match account_form(&req, t, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let hit = state
        .ephemeral
        .hit(&t.id, &format!("export:{}", user.id), Duration::from_secs(3600))
        .await?;
    if hit.count > EXPORTS_PER_HOUR {
        let p = i18n_privacy::of(strings(&req));
        return Err(AppError::too_many(p.export_throttled, hit.reset_in.as_secs()));
    }
    let who = format!("user:{}", user.id);
    let document = crate::flow::privacy::export(&state, &t, &user, &who).await?;
    let body = serde_json::to_vec_pretty(&document)
        .map_err(|e| AppError::internal("serializing a user export", e))?;
    let name = format!("{}-{}-data.json", file_part(&t.slug), file_part(&user.username));
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(body))
}

/// A name made safe for a file name: letters, digits, `-`, `_` and `.`, at most 64.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

/// One line of the activity list, in the reader's words.
pub(super) struct ActivityRow {
    pub when: String,
    pub what: String,
    pub failed: bool,
    /// Browser, place, address and risk decision, as far as they are known.
    pub context: String,
}

/// The person's recent security events as the account page lists them.
pub(super) async fn activity_rows(
    state: &AppState,
    req: &HttpRequest,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<ActivityRow>, AppError> {
    let p = i18n_privacy::of(strings(req));
    let lines = crate::flow::privacy::activity(state, tenant, user).await?;
    Ok(lines
        .into_iter()
        .map(|a| {
            let context = [
                a.device,
                a.place,
                a.ip,
                a.risk.map(|r| format!("{}: {r}", p.risk_label)),
                a.client,
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" · ");
            ActivityRow {
                when: when(a.at),
                what: describe(p, &a.action),
                failed: a.outcome != Outcome::Success,
                context,
            }
        })
        .collect())
}

/// The action in words; an action without words of its own is shown as recorded.
fn describe(p: &PrivacyStrings, action: &str) -> String {
    let words = match action {
        "login.success" => p.act_sign_in,
        "login.failure" | "login.throttled" => p.act_sign_in_failed,
        "login.second_factor" => p.act_second_factor,
        "user.password_change" | "user.password_reset" | "user.set_password" => p.act_password,
        "consent.grant" => p.act_consent_grant,
        "consent.revoke" | "consent.deny" => p.act_consent_revoke,
        "session.revoke" | "session.revoke_all" => p.act_sessions_ended,
        "user.export" => p.act_export,
        "terms.accept" => p.act_terms,
        "user.update" | "user.email_verified" => p.act_profile,
        a if a.starts_with("mfa.") => p.act_factor,
        a if a.starts_with("user.deletion") => p.act_deletion,
        other => return other.to_owned(),
    };
    words.to_owned()
}
