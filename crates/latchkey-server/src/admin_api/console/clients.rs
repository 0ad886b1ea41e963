//! The applications (OIDC clients) registered with the tenant: the list and registration, each
//! application's settings with edits, secret rotation and deletion, and the claim preview ("the
//! ID token a portal gets for user X").

use super::page::{Block, Form, Input, Row, Table, render};
use super::users::{field, heads, text};
use super::{Admin, Done, admin_or_return, need, seg};
use crate::state::AppState;
use crate::web::errors::AppError;
use crate::web::form::FormParams;
use crate::web::respond::query_param;
use crate::web::tenant::InTenant;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Permission;
use serde_json::{Value, json};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/clients", web::get().to(clients))
        .route("/admin/clients/{id}", web::get().to(client));
}

fn clients_url(a: &Admin) -> String {
    format!("/t/{}/admin/clients", a.tenant.slug)
}

fn client_url(a: &Admin, id: &str) -> String {
    format!("{}/{}", clients_url(a), seg(id))
}

/// `GET /t/{tenant}/admin/clients`: the applications registered with this tenant.
async fn clients(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::ClientsRead)?;
    let t = a.t;
    let clients: Vec<Value> = a.get(&state, "/clients?limit=1000").await?;
    let mut blocks = vec![Block::Table(Table {
        caption: t.tr("Applications", "Anwendungen").to_owned(),
        head: heads(
            &a,
            &[
                ("Name", "Name"),
                ("Client id", "Client-Id"),
                ("Type", "Typ"),
                ("Redirect URIs", "Weiterleitungs-URIs"),
            ],
        ),
        rows: clients
            .iter()
            .map(|c| Row {
                cells: vec![
                    text(c, "name"),
                    text(c, "client_id"),
                    text(c, "client_type"),
                    c["redirect_uris"].to_string(),
                ],
                link: Some(client_url(&a, &text(c, "client_id"))),
            })
            .collect(),
        empty: t.tr("No application yet.", "Noch keine Anwendung.").to_owned(),
    })];
    if a.may(Permission::ClientsWrite) {
        blocks.push(client_form(&a));
    }
    render(
        &state,
        &req,
        &a,
        ("clients", t.tr("Applications", "Anwendungen")),
        &blocks,
    )
}

/// Registering a portal: its name, type and redirect URIs (one per line); the checks are the
/// API's (exact https or loopback URIs, no wildcards).
fn client_form(a: &Admin) -> Block {
    let t = a.t;
    let types = vec![
        (
            "confidential".to_owned(),
            t.tr(
                "Confidential (a server-side web app)",
                "Vertraulich (serverseitige Web-App)",
            )
            .to_owned(),
        ),
        (
            "public".to_owned(),
            t.tr(
                "Public (a single-page or native app, PKCE)",
                "Öffentlich (Single-Page- oder native App, PKCE)",
            )
            .to_owned(),
        ),
    ];
    Block::Form(
        Form::action(
            a,
            "client-create",
            t.tr("Register an application", "Anwendung registrieren"),
            t.tr("Register", "Registrieren"),
            &clients_url(a),
        )
        .field(Input::text("name", t.tr("Name", "Name"), "").required())
        .field(Input::select(
            "client_type",
            t.tr("Type", "Typ"),
            types,
            "confidential",
        ))
        .field(
            Input::text(
                "redirect_uris",
                t.tr(
                    "Redirect URIs, one per line",
                    "Weiterleitungs-URIs, eine pro Zeile",
                ),
                "",
            )
            .kind("textarea")
            .required(),
        )
        .field(
            Input::text(
                "post_logout_redirect_uris",
                t.tr(
                    "Post-logout redirect URIs, one per line",
                    "URIs nach der Abmeldung, eine pro Zeile",
                ),
                "",
            )
            .kind("textarea"),
        )
        .field(
            Input::text(
                "first_party",
                t.tr(
                    "First party (no consent screen)",
                    "Eigene Anwendung (ohne Einwilligungsseite)",
                ),
                "",
            )
            .kind("checkbox"),
        ),
    )
}

/// Registers a client and shows its secret this once.
async fn create_client(state: &AppState, a: &Admin, f: &FormParams) -> Result<Done, AppError> {
    let t = a.t;
    let body = json!({
        "name": f.get("name").unwrap_or_default().trim(),
        "client_type": f.get("client_type").unwrap_or("confidential"),
        "redirect_uris": lines(f, "redirect_uris"),
        "post_logout_redirect_uris": lines(f, "post_logout_redirect_uris"),
        "first_party": f.get("first_party") == Some("on"),
    });
    let answer = a.api(state, Method::POST, "/clients", Some(&body)).await?;
    if !answer.ok() {
        return Ok(Done::Failed(answer.problem()));
    }
    Ok(secret_page(
        a,
        &answer.body,
        &state.config.issuer(&a.tenant.slug),
        ("clients", t.tr("Application registered", "Anwendung registriert")),
    ))
}

/// The page that shows a client's new secret, the one time it is shown.
fn secret_page(a: &Admin, c: &Value, issuer: &str, title: (&'static str, &'static str)) -> Done {
    let t = a.t;
    let id = text(c, "client_id");
    let secret = c["client_secret"].as_str().map_or_else(
        || {
            t.tr("none (a public client)", "keins (öffentlicher Client)")
                .to_owned()
        },
        str::to_owned,
    );
    let mut pairs = vec![
        ("client_id".to_owned(), id.clone()),
        ("client_secret".to_owned(), secret),
        (
            t.tr("Issuer (discovery)", "Aussteller (Discovery)").to_owned(),
            issuer.to_owned(),
        ),
    ];
    if let Some(until) = c["previous_secret_expires_at"].as_i64() {
        pairs.push((
            t.tr("The old secret works until", "Das alte Geheimnis gilt bis")
                .to_owned(),
            super::page::when(until),
        ));
    }
    Done::Show(
        title,
        vec![
            Block::Pairs {
                caption: t
                    .tr(
                        "Give these to the portal's developers",
                        "Diese Werte an die Entwickler des Portals geben",
                    )
                    .to_owned(),
                pairs,
            },
            Block::Text(
                t.tr(
                    "The secret is shown this once; only its hash is stored.",
                    "Das Geheimnis wird nur dieses eine Mal gezeigt; gespeichert wird nur sein Hash.",
                )
                .to_owned(),
            ),
            Block::Link(
                t.tr("Open the application", "Anwendung öffnen").to_owned(),
                client_url(a, &id),
            ),
        ],
    )
}

/// `GET /t/{tenant}/admin/clients/{id}?user=…`: one application, its claim mapping, and the
/// tokens it would get for a user ("this is the ID token a portal gets for user X").
async fn client(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::ClientsRead)?;
    let t = a.t;
    let id = path.into_inner().1;
    let read = a
        .api(&state, Method::GET, &format!("/clients/{}", seg(&id)), None)
        .await?;
    let etag = read.etag.clone().unwrap_or_default();
    let c: Value = read.parse("client")?;
    let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
    let user = query_param(&req, "user").unwrap_or_default();
    let mut blocks = vec![
        Block::Pairs {
            caption: t.tr("Application", "Anwendung").to_owned(),
            pairs: [
                "name",
                "client_id",
                "client_type",
                "auth_method",
                "redirect_uris",
                "grant_types",
                "scopes",
            ]
            .iter()
            .map(|k| {
                (
                    (*k).to_owned(),
                    c.get(*k)
                        .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                        .unwrap_or_default(),
                )
            })
            .collect(),
        },
        Block::Pre {
            caption: t.tr("Claim mapping", "Claim-Zuordnung").to_owned(),
            text: match &c["settings"]["claims"] {
                Value::Null => t
                    .tr(
                        "The defaults: the roles and groups scopes release the user's roles and groups; no mappers.",
                        "Die Voreinstellung: die Scopes roles und groups geben Rollen und Gruppen des Benutzers frei; keine Zuordnungen.",
                    )
                    .to_owned(),
                claims => pretty(claims),
            },
        },
        Block::Form(Form::query(t
                .tr(
                    "Preview the tokens for a user",
                    "Tokens für einen Benutzer ansehen",
                ), client_url(&a, &id), t.tr("Preview", "Ansehen"), vec![
                Input::text(
                    "user",
                    t.tr("Username or user id", "Benutzername oder Benutzer-Id"),
                    &user,
                )
                .required(),
            ])),
    ];
    if !user.is_empty() {
        blocks.extend(preview(&state, &a, &id, &user).await?);
    }
    blocks.extend(manage_forms(&a, &c, &etag).into_iter().map(Block::Form));
    render(
        &state,
        &req,
        &a,
        (
            "clients",
            &format!("{} {}", t.tr("Application", "Anwendung"), text(&c, "name")),
        ),
        &blocks,
    )
}

/// The preview's three documents, or the API's reason there is none.
async fn preview(state: &AppState, a: &Admin, id: &str, user: &str) -> Result<Vec<Block>, AppError> {
    let t = a.t;
    let path = format!("/clients/{}/preview?user={}", seg(id), seg(user));
    let answer = a.api(state, Method::GET, &path, None).await?;
    if !answer.ok() {
        return Ok(vec![Block::Text(answer.problem())]);
    }
    let p = &answer.body;
    let doc = |caption: &str, key: &str| Block::Pre {
        caption: caption.to_owned(),
        text: serde_json::to_string_pretty(&p[key]).unwrap_or_default(),
    };
    Ok(vec![
        doc(t.tr("ID token", "ID-Token"), "id_token"),
        doc(t.tr("Access token", "Access-Token"), "access_token"),
        doc(t.tr("Userinfo", "Userinfo"), "userinfo"),
    ])
}

/// What a client admin may change on the application page: its name and URIs, its secret (a
/// confidential client), and the application itself.
fn manage_forms(a: &Admin, c: &Value, etag: &str) -> Vec<Form> {
    let t = a.t;
    let id = text(c, "client_id");
    let back = client_url(a, &id);
    let lines = |k: &str| {
        c[k].as_array()
            .map(|v| v.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    if a.may(Permission::ClientsWrite) {
        out.push(
            Form::action(a, "client-update", t.tr("Change the application", "Anwendung ändern"), t.tr("Save", "Speichern"), &back)
                .hidden("client", &id)
                .hidden("etag", etag)
                .field(Input::text("name", t.tr("Name", "Name"), &text(c, "name")).required())
                .field(
                    Input::text(
                        "redirect_uris",
                        t.tr("Redirect URIs, one per line", "Weiterleitungs-URIs, eine pro Zeile"),
                        &lines("redirect_uris"),
                    )
                    .kind("textarea")
                    .help(t.tr(
                        "Exact matches only. A URI removed here stops working at once, also for sign-ins under way.",
                        "Nur exakte Treffer. Eine hier entfernte URI funktioniert sofort nicht mehr, auch für laufende Anmeldungen.",
                    )),
                )
                .field(
                    Input::text(
                        "post_logout_redirect_uris",
                        t.tr("Post-logout redirect URIs, one per line", "URIs nach der Abmeldung, eine pro Zeile"),
                        &lines("post_logout_redirect_uris"),
                    )
                    .kind("textarea"),
                ),
        );
    }
    if a.may(Permission::ClientsSecrets) && text(c, "client_type") == "confidential" {
        let overlaps = [
            ("0", t.tr("stops at once", "sofort ungültig")),
            ("3600", t.tr("keeps working for 1 hour", "gilt noch 1 Stunde")),
            ("86400", t.tr("keeps working for 1 day", "gilt noch 1 Tag")),
            ("604800", t.tr("keeps working for 7 days", "gilt noch 7 Tage")),
        ]
        .iter()
        .map(|(v, l)| ((*v).to_owned(), (*l).to_owned()))
        .collect();
        out.push(
            Form::action(a, "client-rotate-secret", t.tr("Rotate the client secret", "Client-Geheimnis rotieren"), t.tr("Rotate secret", "Geheimnis rotieren"), &back)
                .hidden("client", &id)
                .field(Input::select("overlap_secs", t.tr("The old secret", "Das alte Geheimnis"), overlaps, "86400"))
                .danger(t.tr(
                    "Yes: make a new secret. The portal must be given it before the old one stops working, or its sign-ins fail.",
                    "Ja: ein neues Geheimnis erzeugen. Das Portal muss es erhalten, bevor das alte ungültig wird, sonst schlagen seine Anmeldungen fehl.",
                )),
        );
    }
    if a.may(Permission::ClientsWrite) {
        out.push(
            Form::action(
                a,
                "client-delete",
                t.tr("Delete the application", "Anwendung löschen"),
                t.tr("Delete", "Löschen"),
                &back,
            )
            .hidden("client", &id)
            .danger(t.tr(
                "Yes: delete it. Its users' grants and tokens stop working at once.",
                "Ja: löschen. Die Freigaben und Tokens seiner Benutzer werden sofort ungültig.",
            )),
        );
    }
    out
}

/// The application actions by name, or `None` when `op` is not one.
pub(super) async fn action(
    state: &AppState,
    a: &Admin,
    op: &str,
    f: &FormParams,
) -> Result<Option<Done>, AppError> {
    let t = a.t;
    let id = field(f, "client").unwrap_or_default();
    let path = format!("/clients/{}", seg(id));
    let done = match op {
        "client-create" => create_client(state, a, f).await?,
        "client-update" => {
            let body = json!({
                "name": field(f, "name").unwrap_or_default(),
                "redirect_uris": lines(f, "redirect_uris"),
                "post_logout_redirect_uris": lines(f, "post_logout_redirect_uris"),
            });
            let version = field(f, "etag");
            let answer = a
                .api_if(state, (Method::PATCH, &path), Some(&body), version)
                .await?;
            if answer.status == actix_web::http::StatusCode::PRECONDITION_FAILED {
                return Ok(Some(Done::Failed(
                    t.tr(
                        "Someone changed the application since you opened it: nothing was saved. Open it again to see their change.",
                        "Jemand hat die Anwendung geändert, seit Sie sie geöffnet haben: nichts wurde gespeichert. Öffnen Sie sie erneut, um die Änderung zu sehen.",
                    )
                    .to_owned(),
                )));
            }
            Done::of(
                &answer,
                t.tr("Application changed.", "Anwendung geändert.").to_owned(),
            )
        }
        "client-rotate-secret" => {
            let overlap: u64 = field(f, "overlap_secs").and_then(|v| v.parse().ok()).unwrap_or(0);
            let answer = a
                .api(
                    state,
                    Method::POST,
                    &format!("{path}/rotate-secret"),
                    Some(&json!({"overlap_secs": overlap})),
                )
                .await?;
            if !answer.ok() {
                return Ok(Some(Done::Failed(answer.problem())));
            }
            secret_page(
                a,
                &answer.body,
                &state.config.issuer(&a.tenant.slug),
                ("clients", t.tr("New client secret", "Neues Client-Geheimnis")),
            )
        }
        "client-delete" => {
            let answer = a.api(state, Method::DELETE, &path, None).await?;
            if !answer.ok() {
                return Ok(Some(Done::Failed(answer.problem())));
            }
            Done::To(
                clients_url(a),
                t.tr("Application deleted.", "Anwendung gelöscht.").to_owned(),
            )
        }
        _ => return Ok(None),
    };
    Ok(Some(done))
}

/// A form field's non-empty lines.
fn lines(f: &FormParams, k: &str) -> Vec<String> {
    f.get(k)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}
