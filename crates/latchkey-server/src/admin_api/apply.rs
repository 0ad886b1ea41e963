//! `/admin/t/{tenant}/apply` and `/export`: tenants as code over HTTP (docs/tenants-as-code.md),
//! the same `latchkey_services::tenant_file` the CLI's `apply` and `export` run. Over HTTP no
//! secret reference is resolved (it would read the server's environment or files): a new
//! confidential client gets a generated secret, in the answer only.

use super::{audit, authenticate, deny, json_ok, query};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{Outcome, Permission};
use latchkey_services::ServiceError;
use latchkey_services::tenant_file::{self, Current, Format, Metadata, SecretRef, Secrets};
use serde_json::json;

/// The largest tenant file accepted over HTTP (as from a file).
pub(super) const MAX_FILE_BODY: usize = crate::web::limits::TENANT_FILE_MAX_BODY;

/// Refuses every `client_secret` reference.
struct NoReferences;

impl Secrets for NoReferences {
    fn resolve(&self, at: &str, _: &SecretRef) -> Result<String, ServiceError> {
        Err(ServiceError::TenantFile {
            at: at.to_owned(),
            message: "secret references are not resolved over the API (they would read the \
                      server's environment or files): leave client_secret out, and a new client \
                      gets a generated secret in the answer"
                .into(),
        })
    }
}

/// The risk webhook is the operator's (`latchkey tenant update --risk-webhook`, which makes its
/// secret; `PATCH …/policies` refuses it too): a file applied over the API may not move or
/// clear it, or a tenant admin could send the signed risk events elsewhere, or to an address
/// inside the server's network.
fn keeps_the_webhook(
    db: &latchkey_store::Db,
    tenant: &latchkey_core::Tenant,
    file: &tenant_file::TenantFile,
) -> Result<(), ServiceError> {
    let Some(policy) = &file.policy else {
        return Ok(());
    };
    let stored = latchkey_store::TenantRepo::tenant(db, &tenant.id)?.ok_or(ServiceError::TenantGone)?;
    if policy.risk.webhook_url == stored.policy.risk.webhook_url {
        return Ok(());
    }
    Err(ServiceError::TenantFile {
        at: "policy.risk.webhook_url".into(),
        message: "the risk webhook is set with `latchkey tenant update --risk-webhook`, not over the \
                  API: keep it as `export` shows it"
            .into(),
    })
}

/// The body's format by its `Content-Type`: JSON, or YAML (`application/yaml`,
/// `application/x-yaml`, `text/yaml`); anything else is 415.
fn format(req: &HttpRequest) -> Result<Format, AppError> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(Format::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(Format::Yaml),
        _ => Err(AppError::new(
            Kind::UnsupportedMediaType,
            "Send the tenant file as application/json or application/yaml.",
        )),
    }
}

/// The parts of a tenant a file describes, with the permission to change each. (Reading them all
/// is the route's own permission set, in the route table.)
const AREAS: &[(&str, Permission)] = &[
    ("policies", Permission::PoliciesWrite),
    ("attributes", Permission::AttributesWrite),
    ("groups", Permission::GroupsWrite),
    ("roles", Permission::RolesWrite),
    ("clients", Permission::ClientsWrite),
    ("saml", Permission::SamlWrite),
];

/// The IdP metadata the file's SAML connections need fetched (new connections and new URLs,
/// through `saml::fetch_metadata`'s policy) and its pairwise clients' sector documents, read
/// against the tenant as it is now; the plan asks to plan again if the tenant changed in
/// between. The server fetches a URL only for a caller who may change what it belongs to, SAML
/// connections or clients (also for a dry run): `Err` with the permission missing otherwise.
async fn fetch(
    state: &AppState,
    caller: &super::Caller,
    file: &tenant_file::TenantFile,
) -> Result<Result<Metadata, Permission>, AppError> {
    let now = state.clock.now_millis();
    let sectors = file
        .clients
        .iter()
        .any(|c| c.settings.sector_identifier_uri.is_some());
    if file.saml_connections.iter().all(|c| c.metadata_url.is_none()) && !sectors {
        return Ok(Ok(Metadata::none(now)));
    }
    let tenant = caller.tenant.clone();
    let current = state.store(move |db| Current::load(db, &tenant)).await?;
    for (urls, need) in [
        (Metadata::to_fetch(&current, file).len(), Permission::SamlWrite),
        (
            Metadata::sectors_to_fetch(&current, file).len(),
            Permission::ClientsWrite,
        ),
    ] {
        if urls > 0 && !caller.permissions.contains(need) {
            return Ok(Err(need));
        }
    }
    Ok(Ok(Metadata::fetch(
        &state.config.outbound_allow_private,
        &current,
        file,
        now,
    )
    .await?))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ApplyQuery {
    #[serde(default)]
    dry_run: bool,
    #[serde(default)]
    prune: bool,
}

/// The plan, and what was applied (`null` on a dry run).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ApplyAnswer {
    #[serde(flatten)]
    plan: tenant_file::Plan,
    dry_run: bool,
    applied: Option<usize>,
    created_clients: Option<std::collections::BTreeMap<String, String>>,
    /// Secrets of new confidential clients, shown once.
    secrets: Option<Vec<tenant_file::NewSecret>>,
}

/// The request body as a tenant file: at most [`MAX_FILE_BODY`], UTF-8, YAML or a JSON object.
fn read_file(req: &HttpRequest, bytes: &[u8]) -> Result<tenant_file::TenantFile, AppError> {
    if bytes.len() > MAX_FILE_BODY {
        return Err(AppError::new(
            Kind::PayloadTooLarge,
            "The tenant file is too large.",
        ));
    }
    let format = format(req)?;
    let text = std::str::from_utf8(bytes)
        .map_err(|_| AppError::new(Kind::BadRequest, "The tenant file is not UTF-8."))?;
    // Only an object: serde would take an array for the file, member by position.
    if format == Format::Json && !text.trim_start().starts_with('{') {
        return Err(AppError::new(
            Kind::BadRequest,
            "The tenant file is a JSON object.",
        ));
    }
    Ok(tenant_file::parse(text, format)?)
}

/// `POST …/apply[?dry_run=true][&prune=true]`: the plan, and with `dry_run` off what was
/// applied (`applied`, `created_clients`, `secrets` shown once). Needs every area's read
/// permission, and to apply, the write permission of each area the plan changes. The file must name this tenant.
pub(super) async fn apply(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let q: ApplyQuery = query(&req)?;
        let caller = authenticate(&req, &state, &slug).await?;
        let file = read_file(&req, &bytes)?;
        let writable: Vec<&'static str> = AREAS
            .iter()
            .filter(|(_, w)| caller.permissions.contains(*w))
            .map(|(a, _)| *a)
            .collect();
        let metadata = match fetch(&state, &caller, &file).await? {
            Ok(metadata) => metadata,
            Err(need) => {
                return deny(&req, &state, &caller, need)
                    .await
                    .map(|()| HttpResponse::Forbidden().finish());
            }
        };
        let (tenant, actor, rng, keys) = (
            caller.tenant.clone(),
            caller.actor(),
            state.rng.clone(),
            state.keys.clone(),
        );
        // Planned and applied in one trip, so what is applied is what was checked.
        let (plan, applied) = state
            .store(move |db| {
                let current = Current::load(db, &tenant)?;
                keeps_the_webhook(db, &tenant, &file)?;
                let plan = tenant_file::plan(&current, &file, q.prune, &NoReferences, &metadata)?;
                if q.dry_run {
                    return Ok::<_, ServiceError>((plan, Ok(None)));
                }
                if let Some(area) = plan.areas().into_iter().find(|a| !writable.contains(a)) {
                    return Ok((plan, Err(area)));
                }
                let applied = tenant_file::apply(db, Some(&keys), &actor, &plan, &*rng)?;
                Ok((plan, Ok(Some(applied))))
            })
            .await?;
        let applied = match applied {
            Ok(a) => a,
            Err(area) => {
                let need = AREAS
                    .iter()
                    .find(|(a, _)| *a == area)
                    .map_or(Permission::PoliciesWrite, |x| x.1);
                return deny(&req, &state, &caller, need)
                    .await
                    .map(|()| HttpResponse::Forbidden().finish());
            }
        };
        let action = if q.dry_run { "tenant.plan" } else { "tenant.apply" };
        let details = json!({"changes": plan.changes.len(), "kept": plan.kept.len(), "prune": q.prune});
        audit(
            &state,
            &caller,
            Outcome::Success,
            action,
            &format!("tenant:{}", caller.tenant.id),
            details,
        )
        .await?;
        Ok(json_ok(&ApplyAnswer {
            dry_run: q.dry_run,
            applied: applied.as_ref().map(|a| a.applied),
            created_clients: applied.as_ref().map(|a| a.created_clients.clone()),
            secrets: applied.map(|a| a.secrets),
            plan,
        }))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExportQuery {
    format: Option<ExportFormat>,
}

#[derive(Clone, Copy, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
enum ExportFormat {
    Json,
    Yaml,
}

/// `GET …/export[?format=yaml]`: the tenant as a tenant file, JSON by default, without secrets.
pub(super) async fn export(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let q: ExportQuery = query(&req)?;
        let yaml = matches!(q.format, Some(ExportFormat::Yaml));
        let tenant = caller.tenant.clone();
        let file = state
            .store(move |db| tenant_file::export(&Current::load(db, &tenant)?))
            .await?;
        let target = format!("tenant:{}", caller.tenant.id);
        let details = json!({"format": if yaml { "yaml" } else { "json" }});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "tenant.export",
            &target,
            details,
        )
        .await?;
        if !yaml {
            return Ok(json_ok(&file));
        }
        let text = tenant_file::render(&file, Format::Yaml).map_err(|e| AppError::internal("export", e))?;
        Ok(HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .content_type("application/yaml")
            .body(text))
    }
    .await
    .map_err(AppError::problem)
}
