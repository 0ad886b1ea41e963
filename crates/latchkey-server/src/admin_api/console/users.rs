//! The console's users pages: search, a user's page (profile, factors, access, attributes,
//! sessions, applications, recent security activity) and the actions on a user.

use super::page::{Block, Form, Input, Row, Table, render, when};
use super::{Admin, Done, admin_or_return, seg};
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
    cfg.route("/admin/users", web::get().to(list))
        .route("/admin/users/{id}", web::get().to(show));
}

/// A member of a JSON object as text ("" when absent or null).
pub(super) fn text(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A time member (Unix ms) as text ("" when absent).
pub(super) fn time(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_i64).map(when).unwrap_or_default()
}

fn users_url(a: &Admin) -> String {
    format!("/t/{}/admin/users", a.tenant.slug)
}

pub(super) fn user_url(a: &Admin, id: &str) -> String {
    format!("/t/{}/admin/users/{}", a.tenant.slug, seg(id))
}

/// `GET /t/{tenant}/admin/users?q=…&status=…&attribute=…&cursor=…`: the search, 100 users a
/// page, and the forms to add people.
async fn list(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    let t = a.t;
    let search = Search::of(&req);
    let mut path = format!("/users?{}", search.query(&[("limit", "100")]));
    if let Some(cursor) = query_param(&req, "cursor") {
        path = format!("{path}&cursor={}", seg(&cursor));
    }
    let answer = a.api(&state, Method::GET, &path, None).await?;
    let refused = (!answer.ok()).then(|| answer.problem());
    let next = answer.next.as_ref().map(|cursor| {
        Block::Link(
            t.tr("Next page", "Nächste Seite").to_owned(),
            format!("{}?{}", users_url(&a), search.query(&[("cursor", cursor)])),
        )
    });
    let users: Vec<Value> = if refused.is_some() {
        Vec::new()
    } else {
        answer.parse("users")?
    };
    let mut blocks = vec![search_form(&a, &search)];
    blocks.push(Block::Table(Table {
        caption: t.tr("Users", "Benutzer").to_owned(),
        head: vec![
            t.tr("Username", "Benutzername").to_owned(),
            t.tr("Name", "Name").to_owned(),
            t.tr("Email", "E-Mail").to_owned(),
            t.tr("Status", "Status").to_owned(),
            t.tr("Created", "Angelegt").to_owned(),
        ],
        rows: users
            .iter()
            .map(|u| Row {
                cells: vec![
                    text(u, "username"),
                    text(u, "display_name"),
                    text(u, "email"),
                    text(u, "status"),
                    time(u, "created_at"),
                ],
                link: Some(user_url(&a, &text(u, "id"))),
            })
            .collect(),
        empty: t.tr("No user matches.", "Kein Benutzer passt.").to_owned(),
    }));
    blocks.extend(next);
    if a.may(Permission::UsersWrite) {
        blocks.push(create_form(&a));
    }
    if a.may(Permission::InvitationsWrite) {
        blocks.push(invite_form(&a));
    }
    super::page::render_with(
        &state,
        &req,
        &a,
        ("users", t.tr("Users", "Benutzer")),
        &blocks,
        refused,
    )
}

/// Search by name, username or email prefix, status, and an attribute's value.
/// The user search's filters, as the page's query gave them.
struct Search {
    q: String,
    status: String,
    attribute: String,
}

impl Search {
    fn of(req: &HttpRequest) -> Search {
        let status = query_param(req, "status")
            .filter(|s| ["active", "disabled", "deleted"].contains(&s.as_str()))
            .unwrap_or_default();
        Search {
            q: query_param(req, "q").unwrap_or_default(),
            status,
            attribute: query_param(req, "attribute").unwrap_or_default(),
        }
    }

    /// The filters that are set, and `extra`, as a query string.
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        let set = [
            ("q", &self.q),
            ("status", &self.status),
            ("attribute", &self.attribute),
        ];
        for (k, v) in set.iter().filter(|(_, v)| !v.is_empty()) {
            out.append_pair(k, v);
        }
        out.extend_pairs(extra);
        out.finish()
    }
}

fn search_form(a: &Admin, Search { q, status, attribute }: &Search) -> Block {
    let t = a.t;
    let statuses = vec![
        (String::new(), t.tr("Any", "Alle").to_owned()),
        ("active".to_owned(), t.tr("Active", "Aktiv").to_owned()),
        ("disabled".to_owned(), t.tr("Disabled", "Gesperrt").to_owned()),
        ("deleted".to_owned(), t.tr("Deleted", "Gelöscht").to_owned()),
    ];
    Block::Form(Form::query(
        t.tr("Search", "Suchen"),
        users_url(a),
        t.tr("Search", "Suchen"),
        vec![
            Input::text(
                "q",
                t.tr(
                    "Name, username or email starts with",
                    "Name, Benutzername oder E-Mail beginnt mit",
                ),
                q,
            ),
            Input::select("status", t.tr("Status", "Status"), statuses, status),
            Input::text(
                "attribute",
                t.tr("Attribute equals (name=value)", "Attribut gleich (Name=Wert)"),
                attribute,
            ),
        ],
    ))
}

fn create_form(a: &Admin) -> Block {
    let t = a.t;
    Block::Form(
        Form::action(
            a,
            "user-create",
            t.tr("Create a user", "Benutzer anlegen"),
            t.tr("Create user", "Benutzer anlegen"),
            &users_url(a),
        )
        .field(Input::text("username", t.tr("Username", "Benutzername"), "").required())
        .field(Input::text("email", t.tr("Email", "E-Mail"), "").kind("email"))
        .field(Input::text(
            "display_name",
            t.tr("Display name", "Anzeigename"),
            "",
        ))
        .field(
            Input::text(
                "password",
                t.tr("First password (optional)", "Erstes Passwort (optional)"),
                "",
            )
            .kind("password")
            .help(t.tr(
                "Without one the user sets a password through a reset link, a passkey or SAML.",
                "Ohne Passwort setzt der Benutzer eines über einen Link, einen Passkey oder SAML.",
            )),
        ),
    )
}

fn invite_form(a: &Admin) -> Block {
    let t = a.t;
    Block::Form(
        Form::action(
            a,
            "user-invite",
            t.tr("Invite someone", "Jemanden einladen"),
            t.tr("Send invitation", "Einladung senden"),
            &users_url(a),
        )
        .field(
            Input::text("email", t.tr("Email", "E-Mail"), "")
                .kind("email")
                .required(),
        )
        .field(Input::text(
            "display_name",
            t.tr("Display name", "Anzeigename"),
            "",
        ))
        .field(Input::text(
            "groups",
            t.tr("Groups (comma-separated)", "Gruppen (durch Komma getrennt)"),
            "",
        )),
    )
}

/// `GET /t/{tenant}/admin/users/{id}`.
async fn show(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    let t = a.t;
    let id = path.into_inner().1;
    let base = format!("/users/{}", seg(&id));
    let user: Value = a.get(&state, &base).await?;
    let title = format!("{} {}", t.tr("User", "Benutzer"), text(&user, "username"));
    let mut blocks = vec![profile(&a, &user)];
    blocks.extend(sections(&state, &a, &base).await?);
    blocks.push(activity(&state, &a, &id).await?);
    blocks.extend(actions(&a, &user));
    render(&state, &req, &a, ("users", &title), &blocks)
}

fn profile(a: &Admin, u: &Value) -> Block {
    let t = a.t;
    Block::Pairs {
        caption: t.tr("Profile", "Profil").to_owned(),
        pairs: vec![
            (t.tr("Id", "Id").to_owned(), text(u, "id")),
            (t.tr("Username", "Benutzername").to_owned(), text(u, "username")),
            (t.tr("Name", "Name").to_owned(), text(u, "display_name")),
            (t.tr("Email", "E-Mail").to_owned(), text(u, "email")),
            (
                t.tr("Email verified", "E-Mail bestätigt").to_owned(),
                text(u, "email_verified"),
            ),
            (t.tr("Status", "Status").to_owned(), text(u, "status")),
            (
                t.tr("Password changed", "Passwort geändert").to_owned(),
                time(u, "password_changed_at"),
            ),
            (t.tr("Created", "Angelegt").to_owned(), time(u, "created_at")),
        ],
    }
}

/// Factors, access, attributes, sessions and applications: each read the admin may make.
async fn sections(state: &AppState, a: &Admin, base: &str) -> Result<Vec<Block>, AppError> {
    let mut out = Vec::new();
    if a.may(Permission::UsersRead) {
        out.push(factors(a, &a.get(state, &format!("{base}/mfa")).await?));
        out.push(access(a, &a.get(state, &format!("{base}/roles")).await?));
        out.push(attributes(a, &a.get(state, &format!("{base}/attributes")).await?));
    }
    if a.may(Permission::SessionsRead) {
        let sessions: Vec<Value> = a.get(state, &format!("{base}/sessions")).await?;
        let grants: Vec<Value> = a.get(state, &format!("{base}/grants")).await?;
        out.extend(live(a, &sessions, &grants));
    }
    Ok(out)
}

fn factors(a: &Admin, f: &Value) -> Block {
    let t = a.t;
    let totp = if f["totp"].is_null() {
        t.tr("none", "keine")
    } else {
        t.tr("set up", "eingerichtet")
    };
    let mut pairs = vec![
        (
            t.tr("Authenticator app", "Authenticator-App").to_owned(),
            totp.to_owned(),
        ),
        (
            t.tr("Recovery codes left", "Verbleibende Wiederherstellungscodes")
                .to_owned(),
            text(f, "recovery_codes_left"),
        ),
    ];
    for p in f["passkeys"].as_array().into_iter().flatten() {
        pairs.push((
            format!("{} {}", t.tr("Passkey", "Passkey"), text(p, "name")),
            format!("{} {}", t.tr("added", "hinzugefügt"), time(p, "created_at")),
        ));
    }
    Block::Pairs {
        caption: t.tr("Second factors", "Zweite Faktoren").to_owned(),
        pairs,
    }
}

fn access(a: &Admin, r: &Value) -> Block {
    let t = a.t;
    let list = |k: &str| r.get(k).map(ToString::to_string).unwrap_or_default();
    Block::Pairs {
        caption: t.tr("Groups and roles", "Gruppen und Rollen").to_owned(),
        pairs: vec![
            (t.tr("Groups", "Gruppen").to_owned(), list("groups")),
            (t.tr("Roles", "Rollen").to_owned(), list("roles")),
            (
                t.tr("Application roles", "Anwendungsrollen").to_owned(),
                list("client_roles"),
            ),
        ],
    }
}

fn attributes(a: &Admin, at: &Value) -> Block {
    let pairs = at
        .get("attributes")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect())
        .unwrap_or_default();
    Block::Pairs {
        caption: a.t.tr("Attributes", "Attribute").to_owned(),
        pairs,
    }
}

/// Column headings in the admin's language.
pub(super) fn heads(a: &Admin, names: &[(&'static str, &'static str)]) -> Vec<String> {
    names.iter().map(|(en, de)| a.t.tr(en, de).to_owned()).collect()
}

fn live(a: &Admin, sessions: &[Value], grants: &[Value]) -> [Block; 2] {
    let t = a.t;
    let session_row = |x: &Value| Row {
        cells: vec![
            time(x, "created_at"),
            time(x, "last_seen"),
            x["amr"].to_string(),
            text(x, "ip"),
            text(x, "user_agent"),
        ],
        link: None,
    };
    [
        Block::Table(Table {
            caption: t.tr("Sessions", "Sitzungen").to_owned(),
            head: heads(
                a,
                &[
                    ("Started", "Begonnen"),
                    ("Last seen", "Zuletzt aktiv"),
                    ("Methods", "Methoden"),
                    ("Address", "Adresse"),
                    ("Browser", "Browser"),
                ],
            ),
            rows: sessions.iter().map(session_row).collect(),
            empty: t.tr("No live session.", "Keine aktive Sitzung.").to_owned(),
        }),
        Block::Table(Table {
            caption: t.tr("Applications", "Anwendungen").to_owned(),
            head: heads(a, &[("Application", "Anwendung"), ("Details", "Details")]),
            rows: grants
                .iter()
                .map(|x| Row {
                    cells: vec![text(x, "client_id"), x.to_string()],
                    link: None,
                })
                .collect(),
            empty: t
                .tr("No application holds access.", "Keine Anwendung hat Zugriff.")
                .to_owned(),
        }),
    ]
}

/// The user's recent security activity from the audit log: sign-ins with their risk score and
/// reasons, risk decisions, factor and account changes.
async fn activity(state: &AppState, a: &Admin, id: &str) -> Result<Block, AppError> {
    let t = a.t;
    let caption = t
        .tr("Recent security activity", "Letzte Sicherheitsereignisse")
        .to_owned();
    if !a.may(Permission::AuditRead) {
        return Ok(Block::Text(
            t.tr(
                "The audit log is not shown: your role may not read it.",
                "Das Audit-Protokoll wird nicht gezeigt: Ihre Rolle darf es nicht lesen.",
            )
            .to_owned(),
        ));
    }
    let page: Value = a
        .get(state, &format!("/audit?user={}&limit=1000", seg(id)))
        .await?;
    let security = [
        "login",
        "risk",
        "mfa",
        "session",
        "password",
        "user.disable",
        "user.enable",
        "user.mfa",
        "logout",
        "console",
    ];
    let mut rows: Vec<Row> = page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            let action = text(e, "action");
            // An admin reading the user is not the user's activity.
            security.iter().any(|p| action.starts_with(p))
                && !matches!(action.rsplit('.').next(), Some("read" | "list"))
        })
        .map(|e| {
            let d = &e["details"];
            let score = d
                .get("risk_score")
                .or_else(|| d.get("score"))
                .map(ToString::to_string)
                .unwrap_or_default();
            let reasons = d.get("reasons").map(ToString::to_string).unwrap_or_default();
            Row {
                cells: vec![
                    time(e, "at"),
                    text(e, "action"),
                    text(e, "outcome"),
                    score,
                    reasons,
                    text(d, "ip"),
                ],
                link: None,
            }
        })
        .collect();
    rows.reverse();
    rows.truncate(50);
    Ok(Block::Table(Table {
        caption,
        head: vec![
            t.tr("When", "Wann").to_owned(),
            t.tr("Event", "Ereignis").to_owned(),
            t.tr("Outcome", "Ergebnis").to_owned(),
            t.tr("Risk score", "Risikowert").to_owned(),
            t.tr("Reasons", "Gründe").to_owned(),
            t.tr("Address", "Adresse").to_owned(),
        ],
        rows,
        empty: t
            .tr("Nothing recorded yet.", "Noch nichts aufgezeichnet.")
            .to_owned(),
    }))
}

/// The forms for what the admin may do to this user.
fn actions(a: &Admin, u: &Value) -> Vec<Block> {
    let id = text(u, "id");
    let back = user_url(a, &id);
    let form =
        |op: &str, title: &str, submit: &str| Form::action(a, op, title, submit, &back).hidden("id", &id);
    let mut out = status_forms(a, u, &form);
    out.extend(edit_forms(a, &form));
    out.extend(revoke_forms(a, u, &form));
    out.into_iter().map(Block::Form).collect()
}

type FormFor<'a> = dyn Fn(&str, &str, &str) -> Form + 'a;

fn status_forms(a: &Admin, u: &Value, form: &FormFor<'_>) -> Vec<Form> {
    let t = a.t;
    if !a.may(Permission::UsersDisable) {
        return Vec::new();
    }
    vec![if text(u, "status") == "disabled" {
        form(
            "user-enable",
            t.tr("Enable", "Entsperren"),
            t.tr("Enable user", "Benutzer entsperren"),
        )
    } else {
        form(
            "user-disable",
            t.tr("Disable", "Sperren"),
            t.tr("Disable user", "Benutzer sperren"),
        )
        .danger(t.tr(
            "Yes, end their sessions and refuse their sign-ins",
            "Ja, Sitzungen beenden und Anmeldungen verweigern",
        ))
    }]
}

fn edit_forms(a: &Admin, form: &FormFor<'_>) -> Vec<Form> {
    let t = a.t;
    let mut out = Vec::new();
    if a.may(Permission::UsersWrite) {
        out.push(
            form(
                "user-attribute",
                t.tr("Set an attribute", "Attribut setzen"),
                t.tr("Save attribute", "Attribut speichern"),
            )
            .field(Input::text("name", t.tr("Attribute", "Attribut"), "").required())
            .field(
                Input::text(
                    "value",
                    t.tr("Value (JSON, or text)", "Wert (JSON oder Text)"),
                    "",
                )
                .help(t.tr("Empty removes the value.", "Leer entfernt den Wert.")),
            ),
        );
    }
    if a.may(Permission::GroupsWrite) {
        out.push(
            form(
                "user-group",
                t.tr("Add to a group", "Zu einer Gruppe hinzufügen"),
                t.tr("Add to group", "Zur Gruppe hinzufügen"),
            )
            .field(Input::text("group", t.tr("Group id", "Gruppen-Id"), "").required()),
        );
    }
    if a.may(Permission::RolesWrite) {
        out.push(
            form(
                "user-role",
                t.tr("Assign a role", "Rolle zuweisen"),
                t.tr("Assign role", "Rolle zuweisen"),
            )
            .field(Input::text("role", t.tr("Role id", "Rollen-Id"), "").required()),
        );
    }
    out
}

fn revoke_forms(a: &Admin, u: &Value, form: &FormFor<'_>) -> Vec<Form> {
    let t = a.t;
    let mut out = Vec::new();
    if a.may(Permission::SessionsRevoke) {
        out.push(
            form(
                "user-sessions-revoke",
                t.tr("End every session", "Alle Sitzungen beenden"),
                t.tr("End sessions", "Sitzungen beenden"),
            )
            .danger(t.tr("Yes, sign them out everywhere", "Ja, überall abmelden")),
        );
        out.push(
            form(
                "user-grants-revoke",
                t.tr("Revoke application access", "Anwendungszugriff entziehen"),
                t.tr("Revoke access", "Zugriff entziehen"),
            )
            .danger(t.tr(
                "Yes, revoke every application's tokens and consent",
                "Ja, Tokens und Einwilligungen aller Anwendungen entziehen",
            )),
        );
    }
    if a.may(Permission::UsersCredentials) {
        out.push(
            form(
                "user-mfa-reset",
                t.tr("Reset second factors", "Zweite Faktoren zurücksetzen"),
                t.tr("Reset factors", "Faktoren zurücksetzen"),
            )
            .danger(t.tr(
                "Yes, remove their passkeys, authenticator app and recovery codes",
                "Ja, Passkeys, Authenticator-App und Wiederherstellungscodes entfernen",
            )),
        );
    }
    if a.may(Permission::UsersDelete) && text(u, "status") != "deleted" {
        out.push(
            form(
                "user-delete",
                t.tr("Delete", "Löschen"),
                t.tr("Delete user", "Benutzer löschen"),
            )
            .danger(t.tr("Yes, delete this user", "Ja, diesen Benutzer löschen")),
        );
    }
    out
}

/// A user action by name, or `None` when `op` is not one.
pub(super) async fn action(
    state: &AppState,
    a: &Admin,
    op: &str,
    f: &FormParams,
) -> Result<Option<Done>, AppError> {
    if op == "user-create" {
        return create(state, a, f).await.map(Some);
    }
    let Some((method, path, body, notice)) = call_for(a, op, f) else {
        return Ok(None);
    };
    let answer = a.api(state, method, &path, body.as_ref()).await?;
    Ok(Some(Done::of(&answer, notice.to_owned())))
}

/// A form's field, trimmed; `None` when empty.
pub(super) fn field<'f>(f: &'f FormParams, k: &str) -> Option<&'f str> {
    f.get(k).map(str::trim).filter(|v| !v.is_empty())
}

/// Creates a user and goes to their page.
async fn create(state: &AppState, a: &Admin, f: &FormParams) -> Result<Done, AppError> {
    let mut b = json!({"username": field(f, "username").unwrap_or_default()});
    for k in ["email", "display_name", "password"] {
        if let Some(v) = field(f, k) {
            b[k] = json!(v);
        }
    }
    let answer = a.api(state, Method::POST, "/users", Some(&b)).await?;
    if !answer.ok() {
        return Ok(Done::Failed(answer.problem()));
    }
    let created = a.t.tr("User created.", "Benutzer angelegt.").to_owned();
    Ok(Done::To(user_url(a, &text(&answer.body, "id")), created))
}

/// The admin API call an action makes: method, path, body, and the notice when it works.
fn call_for(a: &Admin, op: &str, f: &FormParams) -> Option<(Method, String, Option<Value>, &'static str)> {
    let t = a.t;
    let id = seg(f.get("id").unwrap_or_default());
    let of = |k: &str| seg(field(f, k).unwrap_or_default());
    Some(match op {
        "user-invite" => invitation(a, f),
        "user-disable" => (
            Method::POST,
            format!("/users/{id}/disable"),
            None,
            t.tr("User disabled.", "Benutzer gesperrt."),
        ),
        "user-enable" => (
            Method::POST,
            format!("/users/{id}/enable"),
            None,
            t.tr("User enabled.", "Benutzer entsperrt."),
        ),
        "user-delete" => (
            Method::DELETE,
            format!("/users/{id}"),
            None,
            t.tr("User deleted.", "Benutzer gelöscht."),
        ),
        "user-mfa-reset" => (
            Method::DELETE,
            format!("/users/{id}/mfa"),
            None,
            t.tr("Second factors removed.", "Zweite Faktoren entfernt."),
        ),
        "user-sessions-revoke" => (
            Method::DELETE,
            format!("/users/{id}/sessions"),
            None,
            t.tr("Sessions ended.", "Sitzungen beendet."),
        ),
        "user-grants-revoke" => (
            Method::DELETE,
            format!("/users/{id}/grants"),
            None,
            t.tr("Application access revoked.", "Anwendungszugriff entzogen."),
        ),
        "user-attribute" => {
            let path = format!("/users/{id}/attributes/{}", of("name"));
            match field(f, "value") {
                None => (
                    Method::DELETE,
                    path,
                    None,
                    t.tr("Attribute removed.", "Attribut entfernt."),
                ),
                Some(v) => {
                    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| json!(v));
                    (
                        Method::PUT,
                        path,
                        Some(value),
                        t.tr("Attribute saved.", "Attribut gespeichert."),
                    )
                }
            }
        }
        "user-group" => (
            Method::PUT,
            format!("/groups/{}/members/users/{id}", of("group")),
            None,
            t.tr("Added to the group.", "Zur Gruppe hinzugefügt."),
        ),
        "user-role" => (
            Method::PUT,
            format!("/roles/{}/users/{id}", of("role")),
            None,
            t.tr("Role assigned.", "Rolle zugewiesen."),
        ),
        _ => return None,
    })
}

fn invitation(a: &Admin, f: &FormParams) -> (Method, String, Option<Value>, &'static str) {
    let groups: Vec<&str> = field(f, "groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .collect();
    let mut b = json!({"email": field(f, "email").unwrap_or_default(), "groups": groups});
    if let Some(v) = field(f, "display_name") {
        b["display_name"] = json!(v);
    }
    let sent = a.t.tr("Invitation sent.", "Einladung gesendet.");
    (Method::POST, "/invitations".to_owned(), Some(b), sent)
}
