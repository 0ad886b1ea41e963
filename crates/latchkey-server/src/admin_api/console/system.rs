//! The system console: `/t/{tenant}/admin/system/…`, for operators (a system credential bound
//! to the operator's account in this tenant, `latchkey system-token create --operator`). The
//! installation's tenants (list, create, rename, rotate a data key, delete) and the system
//! audit chain, through the admin API's system scope in-process, like the tenant console.

use super::page::{Block, Form, Input, Row, Table, render};
use super::users::{field, heads, text, time};
use super::{Admin, Done, seg};
use crate::state::AppState;
use crate::web::errors::AppError;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Permission;
use serde_json::{Value, json};

/// Every system console page, below `/t/{tenant}/admin/system/`.
pub const PAGES: &[&str] = &["", "audit"];

/// Every system console action (`POST /t/{tenant}/admin/system/do/{op}`).
pub const ACTIONS: &[&str] = &[
    "tenant-create",
    "tenant-rename",
    "tenant-rotate-dek",
    "tenant-delete",
];

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/system/", web::get().to(tenants))
        .route("/admin/system/audit", web::get().to(audit))
        .route("/admin/system/tenants/{slug}", web::get().to(tenant))
        .route("/admin/system/do/{op}", web::post().to(act));
}

macro_rules! operator_or_return {
    ($state:expr, $req:expr, $tenant:expr) => {
        match super::operator($state, $req, $tenant).await? {
            Ok(a) => a,
            Err(res) => return Ok(res),
        }
    };
}

fn home(a: &Admin) -> String {
    format!("/t/{}/admin/system/", a.tenant.slug)
}

/// `GET /t/{tenant}/admin/system/`: the installation's tenants, and a form for a new one.
async fn tenants(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = operator_or_return!(&state, &req, tenant);
    let t = a.t;
    let mut blocks = Vec::new();
    if a.may(Permission::TenantsRead) {
        let all: Vec<Value> = a.get(&state, "/tenants?limit=1000").await?;
        blocks.push(Block::Table(Table {
            caption: t.tr("Tenants", "Mandanten").to_owned(),
            head: heads(
                &a,
                &[
                    ("Slug", "Kürzel"),
                    ("Name", "Name"),
                    ("Issuer", "Aussteller"),
                    ("Created", "Angelegt"),
                ],
            ),
            rows: all
                .iter()
                .map(|x| Row {
                    cells: vec![
                        text(x, "slug"),
                        text(x, "display_name"),
                        text(x, "issuer"),
                        time(x, "created_at"),
                    ],
                    link: Some(format!("{}tenants/{}", home(&a), seg(&text(x, "slug")))),
                })
                .collect(),
            empty: t.tr("No tenant yet.", "Noch kein Mandant.").to_owned(),
        }));
    }
    if a.may(Permission::TenantsWrite) {
        blocks.push(Block::Form(
            Form::action(
                &a,
                "tenant-create",
                t.tr("Create a tenant", "Mandant anlegen"),
                t.tr("Create tenant", "Mandant anlegen"),
                &home(&a),
            )
            .field(Input::text("slug", t.tr("Slug (a-z, 0-9, -)", "Kürzel (a-z, 0-9, -)"), "").required())
            .field(Input::text(
                "display_name",
                t.tr("Display name", "Anzeigename"),
                "",
            )),
        ));
    }
    render(&state, &req, &a, ("", t.tr("Tenants", "Mandanten")), &blocks)
}

/// `GET /t/{tenant}/admin/system/tenants/{slug}`: one tenant and what an operator can do to it.
async fn tenant(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = operator_or_return!(&state, &req, tenant);
    let t = a.t;
    let slug = path.into_inner().1;
    let x: Value = a.get(&state, &format!("/tenants/{}", seg(&slug))).await?;
    let back = format!("{}tenants/{}", home(&a), seg(&slug));
    let form = |op: &str, title: &str, submit: &str| {
        Form::action(&a, op, title, submit, &back).hidden("slug", &slug)
    };
    let mut blocks = vec![Block::Pairs {
        caption: t.tr("Tenant", "Mandant").to_owned(),
        pairs: ["id", "slug", "display_name", "issuer"]
            .iter()
            .map(|k| ((*k).to_owned(), text(&x, k)))
            .chain([(t.tr("Created", "Angelegt").to_owned(), time(&x, "created_at"))])
            .collect(),
    }];
    if a.may(Permission::TenantsWrite) {
        blocks.push(Block::Form(
            form(
                "tenant-rename",
                t.tr("Rename", "Umbenennen"),
                t.tr("Save name", "Namen speichern"),
            )
            .field(
                Input::text(
                    "display_name",
                    t.tr("Display name", "Anzeigename"),
                    &text(&x, "display_name"),
                )
                .required(),
            ),
        ));
    }
    if a.may(Permission::MasterKey) {
        blocks.push(Block::Form(
            form("tenant-rotate-dek", t.tr("Rotate the data key", "Datenschlüssel rotieren"), t.tr("Rotate data key", "Datenschlüssel rotieren"))
                .danger(t.tr(
                    "Yes: make a new data key and re-seal this tenant's secrets under it (up to 10,000 per click; repeat until done)",
                    "Ja: einen neuen Datenschlüssel anlegen und die Geheimnisse des Mandanten damit neu versiegeln (bis zu 10.000 pro Klick; wiederholen bis fertig)",
                )),
        ));
    }
    if a.may(Permission::TenantsWrite) {
        blocks.push(Block::Form(
            form(
                "tenant-delete",
                t.tr("Delete", "Löschen"),
                t.tr("Delete tenant", "Mandant löschen"),
            )
            .danger(t.tr(
                "Yes: delete this tenant with all its users, clients and keys",
                "Ja: diesen Mandanten mit allen Benutzern, Clients und Schlüsseln löschen",
            )),
        ));
    }
    render(
        &state,
        &req,
        &a,
        ("", &format!("{} {slug}", t.tr("Tenant", "Mandant"))),
        &blocks,
    )
}

/// `GET /t/{tenant}/admin/system/audit`: the system chain's latest events and its verification.
async fn audit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = operator_or_return!(&state, &req, tenant);
    let t = a.t;
    super::need(&a, Permission::SystemAuditRead)?;
    let page: Value = a.get(&state, "/audit?limit=1000").await?;
    let rows = super::views::latest(&page, false);
    let blocks = vec![
        super::views::chain_status(&state, &a).await?,
        Block::Table(Table {
            caption: t.tr("Latest events", "Neueste Ereignisse").to_owned(),
            head: heads(
                &a,
                &[
                    ("Seq", "Nr."),
                    ("When", "Wann"),
                    ("Actor", "Akteur"),
                    ("Action", "Aktion"),
                    ("Target", "Ziel"),
                    ("Outcome", "Ergebnis"),
                ],
            ),
            rows,
            empty: t.tr("No event yet.", "Noch kein Ereignis.").to_owned(),
        }),
    ];
    render(
        &state,
        &req,
        &a,
        ("audit", t.tr("System audit", "System-Audit")),
        &blocks,
    )
}

/// `POST /t/{tenant}/admin/system/do/{op}`.
async fn act(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    op: web::Path<(String, String)>,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let op = op.into_inner().1;
    let a = match super::posted(&state, &req, (tenant, &op), &form, true).await? {
        Ok(a) => a,
        Err(res) => return Ok(res),
    };
    let done = action(&state, &a, &op, &form).await?;
    Ok(super::finish(&a, &form, done, &home(&a)))
}

async fn action(state: &AppState, a: &Admin, op: &str, f: &FormParams) -> Result<Done, AppError> {
    let t = a.t;
    let slug = seg(field(f, "slug").unwrap_or_default());
    let (method, path, body, notice) = match op {
        "tenant-create" => (
            Method::POST,
            "/tenants".to_owned(),
            Some(
                json!({"slug": field(f, "slug").unwrap_or_default(), "display_name": field(f, "display_name")}),
            ),
            t.tr("Tenant created.", "Mandant angelegt."),
        ),
        "tenant-rename" => (
            Method::PATCH,
            format!("/tenants/{slug}"),
            Some(json!({"display_name": field(f, "display_name")})),
            t.tr("Tenant renamed.", "Mandant umbenannt."),
        ),
        "tenant-rotate-dek" => (
            Method::POST,
            format!("/tenants/{slug}/rotate-dek"),
            None,
            t.tr("Data key rotation ran.", "Datenschlüssel-Rotation ausgeführt."),
        ),
        "tenant-delete" => {
            let answer = a
                .api(state, Method::DELETE, &format!("/tenants/{slug}"), None)
                .await?;
            if !answer.ok() {
                return Ok(Done::Failed(answer.problem()));
            }
            return Ok(Done::To(
                home(a),
                t.tr("Tenant deleted.", "Mandant gelöscht.").to_owned(),
            ));
        }
        _ => return Err(super::unknown_action()),
    };
    let answer = a.api(state, method, &path, body.as_ref()).await?;
    Ok(Done::of(&answer, notice.to_owned()))
}
