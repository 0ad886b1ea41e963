//! The console's other sections: overview, signing keys, audit log, groups and roles, and
//! sign-in risk. Each page checks the permission its section needs before
//! it reads anything, so a direct URL is refused like a hidden link (403, audited by the API).

use super::page::{Block, Form, Input, Row, Table, render};
use super::users::{field, heads, text, time};
use super::{Admin, Done, admin_or_return, need, seg, unknown_action};
use crate::state::AppState;
use crate::web::errors::{AppError, Kind};
use crate::web::form::FormParams;
use crate::web::respond::query_param;
use crate::web::tenant::InTenant;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Permission;
use serde_json::{Value, json};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/keys", web::get().to(keys))
        .route("/admin/audit", web::get().to(audit))
        .route("/admin/audit/export", web::get().to(export))
        .route("/admin/groups", web::get().to(groups))
        .route("/admin/groups/{id}", web::get().to(group))
        .route("/admin/risk", web::get().to(risk));
}

/// The console's stylesheet (beside the sign-in pages' own).
pub(crate) async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../assets/console.css"))
}

/// `GET /t/{tenant}/admin/`: who is signed in, what they may do, and the audit chain's state.
pub(super) async fn home(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    let t = a.t;
    let mut blocks = vec![Block::Pairs {
        caption: t.tr("You", "Sie").to_owned(),
        pairs: vec![
            (
                t.tr("Signed in as", "Angemeldet als").to_owned(),
                a.user.username.clone(),
            ),
            (
                t.tr("Admin roles", "Administratorrollen").to_owned(),
                a.credential.token.roles.join(", "),
            ),
            (
                t.tr("Permissions", "Berechtigungen").to_owned(),
                a.permissions.to_words(),
            ),
        ],
    }];
    if a.may(Permission::AuditRead) {
        blocks.push(chain_status(&state, &a).await?);
    }
    render(&state, &req, &a, ("", t.tr("Overview", "Übersicht")), &blocks)
}

pub(super) async fn chain_status(state: &AppState, a: &Admin) -> Result<Block, AppError> {
    let t = a.t;
    let v: Value = a.get(state, "/audit/verify").await?;
    let ok = v["ok"].as_bool().unwrap_or(false);
    Ok(Block::Pairs {
        caption: t.tr("Audit chain", "Audit-Kette").to_owned(),
        pairs: vec![
            (
                t.tr("Verification", "Prüfung").to_owned(),
                if ok {
                    t.tr("intact", "unversehrt")
                } else {
                    t.tr("BROKEN", "GEBROCHEN")
                }
                .to_owned(),
            ),
            (
                t.tr("Events checked", "Geprüfte Ereignisse").to_owned(),
                text(&v, "events"),
            ),
            (
                t.tr("First broken event", "Erstes gebrochenes Ereignis")
                    .to_owned(),
                text(&v, "first_broken_seq"),
            ),
            (t.tr("Reason", "Grund").to_owned(), text(&v, "reason")),
        ],
    })
}

/// `GET /t/{tenant}/admin/keys`: each key's timeline, and rotation with what it changes.
async fn keys(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::KeysRead)?;
    let t = a.t;
    let keys: Vec<Value> = a.get(&state, "/keys").await?;
    let mut blocks = vec![Block::Table(Table {
        caption: t.tr("Signing keys", "Signaturschlüssel").to_owned(),
        head: [
            "Key id",
            "Algorithm",
            "State",
            "Created",
            "Signing since",
            "Retired",
            "Removed",
        ]
        .iter()
        .zip([
            "Schlüssel-Id",
            "Algorithmus",
            "Zustand",
            "Angelegt",
            "Signiert seit",
            "Ausgemustert",
            "Entfernt",
        ])
        .map(|(en, de)| t.tr(en, de).to_owned())
        .collect(),
        rows: keys
            .iter()
            .map(|k| Row {
                cells: vec![
                    text(k, "kid"),
                    text(k, "alg"),
                    text(k, "state"),
                    time(k, "created_at"),
                    time(k, "activated_at"),
                    time(k, "retired_at"),
                    time(k, "removed_at"),
                ],
                link: None,
            })
            .collect(),
        empty: t.tr("No key yet.", "Noch kein Schlüssel.").to_owned(),
    })];
    if a.may(Permission::KeysManage) {
        blocks.extend(key_forms(&a, &keys));
    }
    render(
        &state,
        &req,
        &a,
        ("keys", t.tr("Signing keys", "Signaturschlüssel")),
        &blocks,
    )
}

/// Rotation, activation of a pending key and revocation of a pending or retired one, each
/// saying what it changes for relying parties.
fn key_forms(a: &Admin, keys: &[Value]) -> Vec<Block> {
    let t = a.t;
    let mut out = Vec::new();
    let back = format!("/t/{}/admin/keys", a.tenant.slug);
    out.push(Block::Form(
        Form::action(a, "key-rotate", t.tr("Rotate", "Rotieren"), t.tr("Start a rotation", "Rotation beginnen"), &back)
            .danger(t.tr(
                "Yes: publish a new key now in the JWKS; it signs after the pre-publication period, so relying parties that cache the JWKS keep verifying",
                "Ja: einen neuen Schlüssel jetzt im JWKS veröffentlichen; er signiert nach der Vorveröffentlichung, damit Anwendungen mit zwischengespeichertem JWKS weiter prüfen können",
            )),
    ));
    for k in keys.iter().filter(|k| text(k, "state") == "pending") {
        out.push(Block::Form(
            Form::action(a, "key-activate", &format!("{} {}", t.tr("Activate", "Aktivieren"), text(k, "kid")), t.tr("Sign with this key now", "Jetzt mit diesem Schlüssel signieren"), &back)
                .hidden("kid", &text(k, "kid"))
                .danger(t.tr(
                    "Yes: new tokens are signed with this key at once; a relying party that has not fetched the JWKS since it was published will refuse them until it does",
                    "Ja: neue Tokens werden sofort mit diesem Schlüssel signiert; eine Anwendung, die das JWKS seit der Veröffentlichung nicht geladen hat, lehnt sie ab, bis sie es tut",
                )),
        ));
    }
    for k in keys.iter().filter(|k| text(k, "state") == "active") {
        let kid = text(k, "kid");
        out.push(Block::Form(
            Form::action(a, "key-retire", &format!("{} {kid}", t.tr("Retire", "Ausmustern")), t.tr("Stop signing with this key", "Nicht mehr mit diesem Schlüssel signieren"), &back)
                .hidden("kid", &kid)
                .danger(t.tr(
                    "Yes: stop signing with it; it stays in the JWKS until the tokens it signed expire, so relying parties keep verifying them",
                    "Ja: nicht mehr damit signieren; er bleibt im JWKS, bis seine Tokens abgelaufen sind, damit Anwendungen sie weiter prüfen können",
                )),
        ));
    }
    for k in keys
        .iter()
        .filter(|k| matches!(text(k, "state").as_str(), "pending" | "retired"))
    {
        let kid = text(k, "kid");
        out.push(Block::Form(
            Form::action(a, "key-revoke", &format!("{} {kid}", t.tr("Revoke", "Widerrufen")), t.tr("Revoke this key", "Diesen Schlüssel widerrufen"), &back)
                .hidden("kid", &kid)
                .danger(t.tr(
                    "Yes: take this key out of the JWKS now; every token it signed stops verifying at relying parties (for a compromised key)",
                    "Ja: diesen Schlüssel sofort aus dem JWKS nehmen; jedes damit signierte Token wird von Anwendungen abgelehnt (für einen kompromittierten Schlüssel)",
                )),
        ));
    }
    out
}

/// `GET /t/{tenant}/admin/audit?action=…&user=…`: the latest events, filtered, with export
/// links and the chain's verification.
async fn audit(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::AuditRead)?;
    let t = a.t;
    let action = query_param(&req, "action").unwrap_or_default();
    let user = query_param(&req, "user").unwrap_or_default();
    let mut q = "limit=1000".to_owned();
    if !action.is_empty() {
        q = format!("{q}&action={}", seg(&action));
    }
    if !user.is_empty() {
        q = format!("{q}&user={}", seg(&user));
    }
    let page: Value = a.get(&state, &format!("/audit?{q}")).await?;
    let rows = latest(&page, true);
    let blocks = vec![
        Block::Form(Form::query(
            t.tr("Filter", "Filtern"),
            format!("/t/{}/admin/audit", a.tenant.slug),
            t.tr("Filter", "Filtern"),
            vec![
                Input::text(
                    "action",
                    t.tr(
                        "Action (exact, or a prefix ending in *)",
                        "Aktion (genau, oder Präfix mit *)",
                    ),
                    &action,
                ),
                Input::text("user", t.tr("User id", "Benutzer-Id"), &user),
            ],
        )),
        export_link(
            &a,
            (
                "csv",
                t.tr(
                    "Export these events as CSV",
                    "Diese Ereignisse als CSV exportieren",
                ),
            ),
            &action,
            &user,
        ),
        export_link(
            &a,
            (
                "jsonl",
                t.tr(
                    "Export these events as JSON lines",
                    "Diese Ereignisse als JSON-Zeilen exportieren",
                ),
            ),
            &action,
            &user,
        ),
        chain_status(&state, &a).await?,
        Block::Table(Table {
            caption: t.tr("Latest events", "Neueste Ereignisse").to_owned(),
            head: ["Seq", "When", "Actor", "Action", "Target", "Outcome", "Details"]
                .iter()
                .zip(["Nr.", "Wann", "Akteur", "Aktion", "Ziel", "Ergebnis", "Details"])
                .map(|(en, de)| t.tr(en, de).to_owned())
                .collect(),
            rows,
            empty: t.tr("No event matches.", "Kein Ereignis passt.").to_owned(),
        }),
    ];
    render(
        &state,
        &req,
        &a,
        ("audit", t.tr("Audit log", "Audit-Protokoll")),
        &blocks,
    )
}

/// A link to the export of the events the page's filter shows.
fn export_link(a: &Admin, (format, label): (&str, &str), action: &str, user: &str) -> Block {
    let href = format!(
        "/t/{}/admin/audit/export?format={format}&action={}&user={}",
        a.tenant.slug,
        seg(action),
        seg(user)
    );
    Block::Link(label.to_owned(), href)
}

/// An audit page's latest 200 events, newest first (with their details when asked).
pub(super) fn latest(page: &Value, details: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let mut cells: Vec<String> = ["seq", "at", "actor", "action", "target", "outcome"]
                .iter()
                .map(|k| if *k == "at" { time(e, k) } else { text(e, k) })
                .collect();
            if details {
                cells.push(e["details"].to_string());
            }
            Row { cells, link: None }
        })
        .collect();
    rows.reverse();
    rows.truncate(200);
    rows
}

/// `GET /t/{tenant}/admin/audit/export?format=csv|jsonl&action=…&user=…`: the filtered events
/// as a download, read through the admin API (audited there like any export).
async fn export(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::AuditRead)?;
    let format = if query_param(&req, "format").as_deref() == Some("jsonl") {
        "jsonl"
    } else {
        "csv"
    };
    let mut q = format!("format={format}&limit=1000");
    for k in ["action", "user"] {
        if let Some(v) = query_param(&req, k).filter(|v| !v.is_empty()) {
            q = format!("{q}&{k}={}", seg(&v));
        }
    }
    let answer = a.api(&state, Method::GET, &format!("/audit?{q}"), None).await?;
    if !answer.ok() {
        return Err(AppError::new(Kind::BadRequest, answer.problem()));
    }
    let name = format!("attachment; filename=\"audit-{}.{format}\"", a.tenant.slug);
    Ok(HttpResponse::Ok()
        .content_type(answer.content_type.unwrap_or_else(|| "text/plain".to_owned()))
        .insert_header((actix_web::http::header::CONTENT_DISPOSITION, name))
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(answer.raw))
}

/// `GET /t/{tenant}/admin/groups`: groups and roles.
async fn groups(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::GroupsRead)?;
    let t = a.t;
    let groups: Vec<Value> = a.get(&state, "/groups?limit=1000").await?;
    let mut blocks = vec![named_table(
        &a,
        t.tr("Groups", "Gruppen"),
        &groups,
        t.tr("No group yet.", "Noch keine Gruppe."),
        Some(&format!("/t/{}/admin/groups", a.tenant.slug)),
    )];
    let back = format!("/t/{}/admin/groups", a.tenant.slug);
    let mut roles = Vec::new();
    if a.may(Permission::RolesRead) {
        roles = a.get(&state, "/roles?limit=1000").await?;
        blocks.push(named_table(
            &a,
            t.tr("Roles", "Rollen"),
            &roles,
            t.tr("No role yet.", "Noch keine Rolle."),
            None,
        ));
    }
    let create = |op: &str, title: &str, submit: &str| {
        Block::Form(
            Form::action(&a, op, title, submit, &back)
                .field(Input::text("name", t.tr("Name", "Name"), "").required())
                .field(Input::text(
                    "description",
                    t.tr("Description", "Beschreibung"),
                    "",
                )),
        )
    };
    if a.may(Permission::GroupsWrite) {
        blocks.push(create(
            "group-create",
            t.tr("Create a group", "Gruppe anlegen"),
            t.tr("Create group", "Gruppe anlegen"),
        ));
    }
    if a.may(Permission::RolesWrite) {
        blocks.push(create(
            "role-create",
            t.tr("Create a role", "Rolle anlegen"),
            t.tr("Create role", "Rolle anlegen"),
        ));
        if !roles.is_empty() {
            blocks.push(role_delete_form(&a, &roles, &back));
        }
    }
    render(
        &state,
        &req,
        &a,
        ("groups", t.tr("Groups and roles", "Gruppen und Rollen")),
        &blocks,
    )
}

/// Deleting a role: every user and group holding it loses it, and tokens issued from then on
/// leave it out.
fn role_delete_form(a: &Admin, roles: &[Value], back: &str) -> Block {
    let t = a.t;
    let options = roles.iter().map(|r| (text(r, "id"), text(r, "name"))).collect();
    Block::Form(
        Form::action(
            a,
            "role-delete",
            t.tr("Delete a role", "Rolle löschen"),
            t.tr("Delete role", "Rolle löschen"),
            back,
        )
        .field(Input::select("role", t.tr("Role", "Rolle"), options, ""))
        .danger(t.tr(
            "Yes: delete the role; everyone holding it loses it, and new tokens leave it out",
            "Ja: die Rolle löschen; alle, die sie haben, verlieren sie, und neue Tokens enthalten sie nicht mehr",
        )),
    )
}

/// `GET /t/{tenant}/admin/groups/{id}`: a group's members and roles; members are added and
/// removed, and the group deleted, here.
async fn group(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::GroupsRead)?;
    let t = a.t;
    let id = path.into_inner().1;
    let g: Value = a.get(&state, &format!("/groups/{}", seg(&id))).await?;
    let users: Vec<Value> = g["members"]["users"].as_array().cloned().unwrap_or_default();
    let mut blocks = vec![
        Block::Pairs {
            caption: t.tr("Group", "Gruppe").to_owned(),
            pairs: vec![
                (t.tr("Name", "Name").to_owned(), text(&g["group"], "name")),
                (
                    t.tr("Description", "Beschreibung").to_owned(),
                    text(&g["group"], "description"),
                ),
                (t.tr("Roles", "Rollen").to_owned(), g["roles"].to_string()),
                (
                    t.tr("Groups inside", "Enthaltene Gruppen").to_owned(),
                    g["members"]["groups"].as_array().map_or(0, Vec::len).to_string(),
                ),
            ],
        },
        Block::Table(Table {
            caption: t.tr("Members", "Mitglieder").to_owned(),
            head: heads(&a, &[("Username", "Benutzername"), ("Id", "Id")]),
            rows: users
                .iter()
                .map(|u| Row {
                    cells: vec![text(u, "username"), text(u, "id")],
                    link: Some(super::users::user_url(&a, &text(u, "id"))),
                })
                .collect(),
            empty: t.tr("No member yet.", "Noch kein Mitglied.").to_owned(),
        }),
    ];
    if a.may(Permission::GroupsWrite) {
        let back = format!("/t/{}/admin/groups/{}", a.tenant.slug, seg(&id));
        let form = |op: &str, title: &str, submit: &str| {
            Form::action(&a, op, title, submit, &back).hidden("group", &id)
        };
        blocks.push(Block::Form(
            form(
                "group-member-remove",
                t.tr("Remove a member", "Mitglied entfernen"),
                t.tr("Remove member", "Mitglied entfernen"),
            )
            .field(Input::text("id", t.tr("User id", "Benutzer-Id"), "").required()),
        ));
        blocks.push(Block::Form(
            form(
                "group-delete",
                t.tr("Delete", "Löschen"),
                t.tr("Delete group", "Gruppe löschen"),
            )
            .danger(t.tr(
                "Yes: delete the group; its members lose the roles it gave them",
                "Ja: die Gruppe löschen; ihre Mitglieder verlieren die Rollen, die sie ihnen gab",
            )),
        ));
    }
    render(
        &state,
        &req,
        &a,
        (
            "groups",
            &format!("{} {}", t.tr("Group", "Gruppe"), text(&g["group"], "name")),
        ),
        &blocks,
    )
}

/// Objects with a name, id and description as a table.
fn named_table(a: &Admin, caption: &str, items: &[Value], empty: &str, link: Option<&str>) -> Block {
    Block::Table(Table {
        caption: caption.to_owned(),
        head: heads(
            a,
            &[("Name", "Name"), ("Id", "Id"), ("Description", "Beschreibung")],
        ),
        rows: items
            .iter()
            .map(|g| Row {
                cells: vec![text(g, "name"), text(g, "id"), text(g, "description")],
                link: link.map(|base| format!("{base}/{}", seg(&text(g, "id")))),
            })
            .collect(),
        empty: empty.to_owned(),
    })
}

/// `GET /t/{tenant}/admin/risk?deny=…&step_up=…`: recent elevated decisions with their
/// reasons, and what other bands would have done to the last sign-ins.
async fn risk(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::AuditRead)?;
    let t = a.t;
    let elevated: Value = a.get(&state, "/audit?action=risk.*&limit=1000").await?;
    let logins: Value = a.get(&state, "/audit?action=login.success&limit=1000").await?;
    let scores: Vec<i64> = events(&logins)
        .filter_map(|e| e["details"]["risk_score"].as_i64())
        .collect();
    let band = |k: &str| {
        query_param(&req, k)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|v| (0..=100).contains(v))
    };
    let mut blocks = vec![
        elevated_table(&a, &elevated),
        simulation_form(&a, band("step_up"), band("deny")),
    ];
    if let Some(outcome) = simulate(&a, &scores, band("step_up"), band("deny")) {
        blocks.push(outcome);
    }
    render(
        &state,
        &req,
        &a,
        ("risk", t.tr("Sign-in risk", "Anmelderisiko")),
        &blocks,
    )
}

/// The events of an audit page.
fn events(page: &Value) -> impl Iterator<Item = &Value> {
    page["events"].as_array().into_iter().flatten()
}

fn elevated_table(a: &Admin, page: &Value) -> Block {
    let t = a.t;
    let mut rows: Vec<Row> = events(page)
        .map(|e| {
            let d = &e["details"];
            Row {
                cells: vec![
                    time(e, "at"),
                    text(e, "target"),
                    text(d, "decision"),
                    text(d, "score"),
                    d["reasons"].to_string(),
                ],
                link: None,
            }
        })
        .collect();
    rows.reverse();
    rows.truncate(100);
    Block::Table(Table {
        caption: t
            .tr("Recent elevated decisions", "Letzte erhöhte Entscheidungen")
            .to_owned(),
        head: heads(
            a,
            &[
                ("When", "Wann"),
                ("User", "Benutzer"),
                ("Decision", "Entscheidung"),
                ("Score", "Wert"),
                ("Reasons", "Gründe"),
            ],
        ),
        rows,
        empty: t
            .tr(
                "No sign-in was stepped up or refused.",
                "Keine Anmeldung wurde hochgestuft oder abgelehnt.",
            )
            .to_owned(),
    })
}

fn simulation_form(a: &Admin, step_up: Option<i64>, deny: Option<i64>) -> Block {
    let t = a.t;
    let shown = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
    Block::Form(Form::query(
        t.tr("Simulate other bands", "Andere Stufen simulieren"),
        format!("/t/{}/admin/risk", a.tenant.slug),
        t.tr("Simulate", "Simulieren"),
        vec![
            Input::text(
                "step_up",
                t.tr("Second factor from score", "Zweiter Faktor ab Wert"),
                &shown(step_up),
            )
            .kind("number"),
            Input::text(
                "deny",
                t.tr("Refuse from score", "Ablehnen ab Wert"),
                &shown(deny),
            )
            .kind("number"),
        ],
    ))
}

/// What bands `step_up` and `deny` would have done to sign-ins with these scores.
fn simulate(a: &Admin, scores: &[i64], step_up: Option<i64>, deny: Option<i64>) -> Option<Block> {
    let t = a.t;
    if deny.is_none() && step_up.is_none() {
        return None;
    }
    let refused = deny.map_or(0, |d| scores.iter().filter(|s| **s >= d).count());
    let stepped = step_up.map_or(0, |u| {
        scores
            .iter()
            .filter(|s| **s >= u && deny.is_none_or(|d| **s < d))
            .count()
    });
    Some(Block::Pairs {
        caption: format!(
            "{} {}",
            t.tr("Against the last sign-ins:", "Gegen die letzten Anmeldungen:"),
            scores.len()
        ),
        pairs: vec![
            (
                t.tr("Would have been refused", "Wären abgelehnt worden")
                    .to_owned(),
                refused.to_string(),
            ),
            (
                t.tr(
                    "Would have needed a second factor",
                    "Hätten einen zweiten Faktor gebraucht",
                )
                .to_owned(),
                stepped.to_string(),
            ),
        ],
    })
}

/// `key-activate`, `key-retire` and `key-revoke` of the key `kid`; `None` for another action.
async fn key_action(state: &AppState, a: &Admin, op: &str, f: &FormParams) -> Result<Option<Done>, AppError> {
    let t = a.t;
    let notice = match op {
        "key-activate" => t.tr("The key signs now.", "Der Schlüssel signiert jetzt."),
        "key-retire" => t.tr("The key is retired.", "Der Schlüssel ist ausgemustert."),
        "key-revoke" => t.tr("The key is revoked.", "Der Schlüssel ist widerrufen."),
        _ => return Ok(None),
    };
    let verb = op.trim_start_matches("key-");
    let path = format!("/keys/{}/{verb}", seg(f.get("kid").unwrap_or_default().trim()));
    let answer = a.api(state, Method::POST, &path, None).await?;
    Ok(Some(Done::of(&answer, notice.to_owned())))
}

/// The actions of these sections by name.
pub(super) async fn action(state: &AppState, a: &Admin, op: &str, f: &FormParams) -> Result<Done, AppError> {
    let t = a.t;
    let named =
        || json!({"name": field(f, "name").unwrap_or_default(), "description": field(f, "description")});
    if let Some(done) = key_action(state, a, op, f).await? {
        return Ok(done);
    }
    let (method, path, body, notice) = match op {
        "key-rotate" => (
            Method::POST,
            "/keys/rotate".to_owned(),
            None,
            t.tr("New key published.", "Neuer Schlüssel veröffentlicht."),
        ),
        "group-member-remove" => (
            Method::DELETE,
            format!(
                "/groups/{}/members/users/{}",
                seg(field(f, "group").unwrap_or_default()),
                seg(field(f, "id").unwrap_or_default())
            ),
            None,
            t.tr("Member removed.", "Mitglied entfernt."),
        ),
        "group-delete" => (
            Method::DELETE,
            format!("/groups/{}", seg(field(f, "group").unwrap_or_default())),
            None,
            t.tr("Group deleted.", "Gruppe gelöscht."),
        ),
        "group-create" => (
            Method::POST,
            "/groups".to_owned(),
            Some(named()),
            t.tr("Group created.", "Gruppe angelegt."),
        ),
        "role-delete" => (
            Method::DELETE,
            format!("/roles/{}", seg(field(f, "role").unwrap_or_default())),
            None,
            t.tr("Role deleted.", "Rolle gelöscht."),
        ),
        "role-create" => (
            Method::POST,
            "/roles".to_owned(),
            Some(named()),
            t.tr("Role created.", "Rolle angelegt."),
        ),
        _ => return Err(unknown_action()),
    };
    let answer = a.api(state, method, &path, body.as_ref()).await?;
    Ok(Done::of(&answer, notice.to_owned()))
}
