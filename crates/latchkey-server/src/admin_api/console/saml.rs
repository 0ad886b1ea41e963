//! The console's SAML pages: the tenant's connections, a guided onboarding per IdP kind (the
//! values to copy into the IdP, then its metadata by URL or pasted), each connection's health
//! (metadata refresh, certificate expiry ahead of time, recent refusals by reason), a test
//! sign-in in a new window with the decoded assertion or the refusal's reason and what to
//! change at the IdP, and the tenant's domain claims with their DNS or HTTP check.

use super::page::{Block, Form, Input, Row, Table, render};
use super::users::{field, heads, text, time};
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
    cfg.route("/admin/saml", web::get().to(list))
        .route("/admin/saml/{name}", web::get().to(show))
        .route("/admin/saml/{name}/tests/{id}", web::get().to(result));
}

/// The IdP kinds the guide knows, with what each calls this side's two values.
const KINDS: &[(&str, &str, &str, &str)] = &[
    (
        "entra",
        "Microsoft Entra ID",
        "Identifier (Entity ID)",
        "Reply URL (Assertion Consumer Service URL)",
    ),
    (
        "okta",
        "Okta",
        "Audience URI (SP Entity ID)",
        "Single sign-on URL",
    ),
    (
        "adfs",
        "AD FS",
        "Relying party trust identifier",
        "SAML 2.0 SSO service URL",
    ),
    ("google", "Google Workspace", "Entity ID", "ACS URL"),
    (
        "generic",
        "Another SAML 2.0 IdP",
        "SP entity ID / audience",
        "Assertion Consumer Service (ACS) URL",
    ),
];

fn base(a: &Admin) -> String {
    format!("/t/{}/admin/saml", a.tenant.slug)
}

/// `GET /t/{tenant}/admin/saml?kind=…&name=…`: the connections, then the guide.
async fn list(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::SamlRead)?;
    let t = a.t;
    let all: Vec<Value> = a.get(&state, "/saml-connections?limit=1000").await?;
    let mut blocks = vec![Block::Table(Table {
        caption: t.tr("SAML connections", "SAML-Verbindungen").to_owned(),
        head: heads(
            &a,
            &[
                ("Name", "Name"),
                ("Display name", "Anzeigename"),
                ("IdP entity ID", "IdP-Entity-ID"),
                ("Metadata URL", "Metadaten-URL"),
            ],
        ),
        rows: all
            .iter()
            .map(|c| Row {
                cells: vec![
                    text(c, "name"),
                    text(c, "display_name"),
                    text(&c["idp"], "entity_id"),
                    text(c, "metadata_url"),
                ],
                link: Some(format!("{}/{}", base(&a), seg(&text(c, "name")))),
            })
            .collect(),
        empty: t.tr("No connection yet.", "Noch keine Verbindung.").to_owned(),
    })];
    if a.may(Permission::SamlWrite) {
        blocks.extend(guide(
            &state,
            &a,
            query_param(&req, "kind").as_deref(),
            query_param(&req, "name").as_deref(),
        ));
    }
    if a.may(Permission::SamlRead) {
        blocks.extend(domains(&state, &a).await?);
    }
    render(
        &state,
        &req,
        &a,
        ("saml", t.tr("SAML connections", "SAML-Verbindungen")),
        &blocks,
    )
}

/// Step 1 names the connection and the IdP kind; step 2 shows what to enter at the IdP and takes
/// its metadata.
fn guide(state: &AppState, a: &Admin, kind: Option<&str>, name: Option<&str>) -> Vec<Block> {
    let t = a.t;
    let kind = KINDS.iter().find(|k| Some(k.0) == kind);
    let name = name.map(str::trim).filter(|n| !n.is_empty());
    let (Some(&(kind, label, entity_label, acs_label)), Some(name)) = (kind, name) else {
        return vec![start(a)];
    };
    let issuer = state.config.issuer(&a.tenant.slug);
    let (entity, acs) = crate::web::urls::saml_sp(&issuer, name);
    vec![
        Block::Pairs {
            caption: format!(
                "{} {label}",
                t.tr("Enter these values in", "Tragen Sie diese Werte ein in")
            ),
            pairs: vec![
                (entity_label.to_owned(), entity.clone()),
                (acs_label.to_owned(), acs),
                (
                    t.tr(
                        "Our metadata (to import instead)",
                        "Unsere Metadaten (zum Importieren)",
                    )
                    .to_owned(),
                    entity,
                ),
                (
                    t.tr("Name ID", "Name ID").to_owned(),
                    t.tr(
                        "a persistent identifier, or the email address",
                        "eine dauerhafte Kennung oder die E-Mail-Adresse",
                    )
                    .to_owned(),
                ),
                (
                    t.tr("Claims to send", "Zu sendende Claims").to_owned(),
                    "email, givenname, surname, groups".to_owned(),
                ),
            ],
        },
        metadata_form(a, (kind, label), name),
    ]
}

/// The guide's second step: the IdP's metadata, by URL, pasted or uploaded.
fn metadata_form(a: &Admin, (kind, label): (&str, &str), name: &str) -> Block {
    let t = a.t;
    Block::Form(
        Form::action(
            a,
            "saml-create",
            t.tr(
                "Then give us the IdP's metadata",
                "Dann die Metadaten des IdP angeben",
            ),
            t.tr("Create connection", "Verbindung anlegen"),
            &base(a),
        )
        .hidden("name", name)
        .hidden("kind", kind)
        .field(Input::text(
            "display_name",
            t.tr(
                "Button label (\"Sign in with …\")",
                "Beschriftung (\"Anmelden mit …\")",
            ),
            label,
        ))
        .field(
            Input::text(
                "metadata_url",
                t.tr(
                    "Metadata URL (refreshed hourly)",
                    "Metadaten-URL (stündlich aktualisiert)",
                ),
                "",
            )
            .kind("url"),
        )
        .field(
            Input::text(
                "metadata_xml",
                t.tr(
                    "…or the metadata document, pasted",
                    "…oder das Metadaten-Dokument, eingefügt",
                ),
                "",
            )
            .kind("textarea"),
        )
        .field(
            Input::text(
                "metadata_file",
                t.tr(
                    "…or the metadata file, uploaded",
                    "…oder die Metadaten-Datei, hochgeladen",
                ),
                "",
            )
            .kind("file")
            .help(t.tr(
                "Give one of the three: the URL, the document or the file.",
                "Eines der drei angeben: URL, Dokument oder Datei.",
            )),
        ),
    )
}

/// The guide's first step: which IdP, and the connection's name.
fn start(a: &Admin) -> Block {
    let t = a.t;
    Block::Form(Form::query(
        t.tr(
            "Connect your identity provider",
            "Ihren Identitätsanbieter verbinden",
        ),
        base(a),
        t.tr(
            "Next: what to enter at the IdP",
            "Weiter: was beim IdP einzutragen ist",
        ),
        vec![
            Input::select(
                "kind",
                t.tr("Identity provider", "Identitätsanbieter"),
                KINDS.iter().map(|k| (k.0.to_owned(), k.1.to_owned())).collect(),
                "entra",
            ),
            Input::text(
                "name",
                t.tr(
                    "Connection name (a-z, 0-9, -)",
                    "Name der Verbindung (a-z, 0-9, -)",
                ),
                "",
            )
            .required(),
        ],
    ))
}

/// The tenant's domain claims, with the challenge to publish and a check button each.
async fn domains(state: &AppState, a: &Admin) -> Result<Vec<Block>, AppError> {
    let t = a.t;
    let all: Vec<Value> = a.get(state, "/domains").await?;
    let mut out = vec![Block::Table(Table {
        caption: t.tr("Domains", "Domains").to_owned(),
        head: heads(
            a,
            &[
                ("Domain", "Domain"),
                ("Verified", "Bestätigt"),
                ("Publish", "Veröffentlichen"),
                ("Last check", "Letzte Prüfung"),
            ],
        ),
        rows: all
            .iter()
            .map(|d| {
                let publish = if text(d, "method") == "dns" {
                    format!("TXT {} = {}", text(d, "dns_name"), text(d, "dns_value"))
                } else {
                    format!("{} : {}", text(d, "http_url"), text(d, "http_body"))
                };
                Row {
                    cells: vec![
                        text(d, "domain"),
                        time(d, "verified_at"),
                        publish,
                        format!("{} {}", time(d, "last_checked_at"), text(d, "last_error")),
                    ],
                    link: None,
                }
            })
            .collect(),
        empty: t
            .tr("No domain claimed yet.", "Noch keine Domain beansprucht.")
            .to_owned(),
    })];
    if a.may(Permission::SamlWrite) {
        let methods = vec![
            (
                "dns".to_owned(),
                t.tr("DNS TXT record", "DNS-TXT-Eintrag").to_owned(),
            ),
            ("http".to_owned(), t.tr("HTTP file", "HTTP-Datei").to_owned()),
        ];
        out.push(Block::Form(
            Form::action(
                a,
                "domain-add",
                t.tr("Claim a domain", "Domain beanspruchen"),
                t.tr("Claim domain", "Domain beanspruchen"),
                &base(a),
            )
            .field(Input::text("domain", t.tr("Domain", "Domain"), "").required())
            .field(Input::select("method", t.tr("Proof", "Nachweis"), methods, "dns")),
        ));
        for d in all.iter().filter(|d| d["verified_at"].is_null()) {
            let domain = text(d, "domain");
            out.push(Block::Form(
                Form::action(
                    a,
                    "domain-verify",
                    &format!("{} {domain}", t.tr("Check", "Prüfen")),
                    t.tr("Check now", "Jetzt prüfen"),
                    &base(a),
                )
                .hidden("domain", &domain),
            ));
        }
    }
    Ok(out)
}

/// `GET /t/{tenant}/admin/saml/{name}`: one connection, its health, and its test sign-in.
async fn show(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::SamlRead)?;
    let t = a.t;
    let name = path.into_inner().1;
    let c: Value = a
        .get(&state, &format!("/saml-connections/{}", seg(&name)))
        .await?;
    let h: Value = a
        .get(&state, &format!("/saml-connections/{}/health", seg(&name)))
        .await?;
    let mut blocks = vec![Block::Pairs {
        caption: t.tr("Connection", "Verbindung").to_owned(),
        pairs: vec![
            (t.tr("Name", "Name").to_owned(), text(&c, "name")),
            (
                t.tr("Display name", "Anzeigename").to_owned(),
                text(&c, "display_name"),
            ),
            (
                t.tr("IdP entity ID", "IdP-Entity-ID").to_owned(),
                text(&c["idp"], "entity_id"),
            ),
            (
                t.tr("IdP sign-in URL", "Anmelde-URL des IdP").to_owned(),
                text(&c["idp"], "sso_url"),
            ),
            (
                t.tr("Metadata URL", "Metadaten-URL").to_owned(),
                text(&c, "metadata_url"),
            ),
        ],
    }];
    blocks.extend(health(&a, &h));
    if a.may(Permission::SamlWrite) {
        let back = format!("{}/{}", base(&a), seg(&name));
        blocks.push(Block::Form(
            Form::action(
                &a,
                "saml-test",
                t.tr("Test sign-in", "Testanmeldung"),
                t.tr("Start a test sign-in", "Testanmeldung starten"),
                &back,
            )
            .hidden("name", &name),
        ));
        blocks.push(Block::Form(
            Form::action(
                &a,
                "saml-refresh",
                t.tr("Metadata", "Metadaten"),
                t.tr("Refresh metadata now", "Metadaten jetzt aktualisieren"),
                &back,
            )
            .hidden("name", &name),
        ));
    }
    render(
        &state,
        &req,
        &a,
        (
            "saml",
            &format!("{} {name}", t.tr("SAML connection", "SAML-Verbindung")),
        ),
        &blocks,
    )
}

fn health(a: &Admin, h: &Value) -> Vec<Block> {
    let t = a.t;
    let m = &h["metadata"];
    let mut out = vec![Block::Pairs {
        caption: t.tr("Health", "Zustand").to_owned(),
        pairs: vec![
            (
                t.tr("Metadata", "Metadaten").to_owned(),
                format!("{} {}", text(m, "outcome"), text(m, "error")),
            ),
            (
                t.tr("Last refresh", "Letzte Aktualisierung").to_owned(),
                time(m, "refreshed_at"),
            ),
            (
                t.tr("Last sign-in", "Letzte Anmeldung").to_owned(),
                time(h, "last_sign_in_at"),
            ),
            (
                t.tr("Refusals in 7 days", "Ablehnungen in 7 Tagen").to_owned(),
                format!("{} {}", text(&h["failures"], "total"), h["failures"]["by_reason"]),
            ),
        ],
    }];
    out.push(Block::Table(Table {
        caption: t
            .tr("IdP signing certificates", "Signaturzertifikate des IdP")
            .to_owned(),
        head: heads(
            a,
            &[
                ("Subject", "Inhaber"),
                ("Expires", "Läuft ab"),
                ("Days left", "Tage übrig"),
                ("Attention", "Hinweis"),
            ],
        ),
        rows: h["certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                let attention = if x["expired"].as_bool() == Some(true) {
                    t.tr(
                        "EXPIRED: sign-ins fail; ask the IdP for its new certificate",
                        "ABGELAUFEN: Anmeldungen scheitern; neues Zertifikat beim IdP anfordern",
                    )
                } else if x["warning"].as_bool() == Some(true) {
                    t.tr(
                        "expires soon: renew it at the IdP and refresh the metadata",
                        "läuft bald ab: beim IdP erneuern und Metadaten aktualisieren",
                    )
                } else {
                    ""
                };
                Row {
                    cells: vec![
                        text(x, "subject"),
                        time(x, "not_after"),
                        text(x, "days_left"),
                        attention.to_owned(),
                    ],
                    link: None,
                }
            })
            .collect(),
        empty: t
            .tr(
                "No certificate in the metadata.",
                "Kein Zertifikat in den Metadaten.",
            )
            .to_owned(),
    }));
    out
}

/// `GET /t/{tenant}/admin/saml/{name}/tests/{id}`: a test's outcome.
async fn result(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::SamlRead)?;
    let t = a.t;
    let (_, name, id) = path.into_inner();
    let r: Value = a
        .get(
            &state,
            &format!("/saml-connections/{}/tests/{}", seg(&name), seg(&id)),
        )
        .await?;
    let status = text(&r, "status");
    let mut blocks = vec![Block::Pairs {
        caption: t.tr("Test sign-in", "Testanmeldung").to_owned(),
        pairs: vec![
            (t.tr("Status", "Status").to_owned(), status.clone()),
            (t.tr("Started", "Begonnen").to_owned(), time(&r, "created_at")),
            (t.tr("Finished", "Beendet").to_owned(), time(&r, "finished_at")),
        ],
    }];
    match status.as_str() {
        "succeeded" => blocks.extend(assertion(&a, &r["assertion"])),
        "refused" => blocks.push(Block::Pairs {
            caption: t.tr("Refused", "Abgelehnt").to_owned(),
            pairs: vec![
                (t.tr("Reason", "Grund").to_owned(), text(&r["refusal"], "reason")),
                (t.tr("Detail", "Einzelheiten").to_owned(), text(&r["refusal"], "detail")),
                (t.tr("What to change at the IdP", "Was beim IdP zu ändern ist").to_owned(), text(&r["refusal"], "hint")),
            ],
        }),
        _ => blocks.push(Block::Text(t.tr("Waiting for the sign-in in the other window; reload this page when it is done.", "Warten auf die Anmeldung im anderen Fenster; laden Sie diese Seite neu, wenn sie beendet ist.").to_owned())),
    }
    render(
        &state,
        &req,
        &a,
        ("saml", t.tr("Test sign-in", "Testanmeldung")),
        &blocks,
    )
}

fn assertion(a: &Admin, x: &Value) -> Vec<Block> {
    let t = a.t;
    let cert = &x["signing_certificate"];
    let pairs = vec![
        (t.tr("Issuer", "Aussteller").to_owned(), text(x, "issuer")),
        (
            "NameID".to_owned(),
            format!("{} ({})", text(x, "name_id"), text(x, "name_id_format")),
        ),
        (t.tr("Audience", "Zielgruppe").to_owned(), text(x, "audience")),
        (t.tr("Email", "E-Mail").to_owned(), text(x, "email")),
        (t.tr("Groups", "Gruppen").to_owned(), x["groups"].to_string()),
        (
            t.tr("Roles they map to", "Zugeordnete Rollen").to_owned(),
            x["roles"].to_string(),
        ),
        (
            t.tr("Groups they map to", "Zugeordnete Gruppen").to_owned(),
            x["mapped_groups"].to_string(),
        ),
        (
            t.tr("Signed", "Signiert").to_owned(),
            format!(
                "response {} · assertion {}",
                text(x, "response_signed"),
                text(x, "assertion_signed")
            ),
        ),
        (
            t.tr("Certificate used", "Verwendetes Zertifikat").to_owned(),
            format!(
                "{} · SHA-256 {} · {}",
                text(cert, "subject"),
                text(cert, "sha256"),
                time(cert, "not_after")
            ),
        ),
        (
            t.tr("Clock skew (seconds)", "Zeitabweichung (Sekunden)")
                .to_owned(),
            text(x, "time_skew_seconds"),
        ),
        (
            t.tr("Multi-factor at the IdP", "Mehrfaktor beim IdP").to_owned(),
            text(x, "multi_factor"),
        ),
    ];
    vec![
        Block::Pairs {
            caption: t.tr("Decoded assertion", "Entschlüsselte Assertion").to_owned(),
            pairs,
        },
        Block::Table(Table {
            caption: t.tr("Attributes", "Attribute").to_owned(),
            head: heads(
                a,
                &[
                    ("Name", "Name"),
                    ("Friendly name", "Kurzname"),
                    ("Values", "Werte"),
                ],
            ),
            rows: x["attributes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|at| Row {
                    cells: vec![
                        text(at, "name"),
                        text(at, "friendly_name"),
                        at["values"].to_string(),
                    ],
                    link: None,
                })
                .collect(),
            empty: t.tr("No attribute.", "Kein Attribut.").to_owned(),
        }),
    ]
}

/// The SAML actions by name, or `None` when `op` is not one.
pub(super) async fn action(
    state: &AppState,
    a: &Admin,
    op: &str,
    f: &FormParams,
) -> Result<Option<Done>, AppError> {
    let t = a.t;
    let name = field(f, "name").unwrap_or_default();
    let (method, path, body, notice) = match op {
        "saml-create" => {
            let (pasted, uploaded) = (field(f, "metadata_xml"), field(f, "metadata_file"));
            if pasted.is_some() && uploaded.is_some() {
                return Ok(Some(Done::Failed(
                    t.tr(
                        "Give the metadata once: pasted or uploaded, not both.",
                        "Metadaten nur einmal angeben: eingefügt oder hochgeladen, nicht beides.",
                    )
                    .to_owned(),
                )));
            }
            let xml = pasted.or(uploaded);
            let b = json!({"name": name, "display_name": field(f, "display_name"), "metadata_url": field(f, "metadata_url"), "metadata_xml": xml});
            let answer = a.api(state, Method::POST, "/saml-connections", Some(&b)).await?;
            if !answer.ok() {
                return Ok(Some(Done::Failed(answer.problem())));
            }
            let created = t.tr(
                "Connection created. Run a test sign-in.",
                "Verbindung angelegt. Starten Sie eine Testanmeldung.",
            );
            return Ok(Some(Done::To(
                format!("{}/{}", base(a), seg(name)),
                created.to_owned(),
            )));
        }
        "saml-test" => return test(state, a, name).await.map(Some),
        "saml-refresh" => (
            Method::POST,
            format!("/saml-connections/{}/refresh", seg(name)),
            None,
            t.tr("Metadata refreshed.", "Metadaten aktualisiert."),
        ),
        "domain-add" => (
            Method::POST,
            "/domains".to_owned(),
            Some(json!({"domain": field(f, "domain"), "method": field(f, "method")})),
            t.tr(
                "Domain claimed: publish the value shown, then check.",
                "Domain beansprucht: den angezeigten Wert veröffentlichen, dann prüfen.",
            ),
        ),
        "domain-verify" => {
            let path = format!("/domains/{}/verify", seg(field(f, "domain").unwrap_or_default()));
            let answer = a.api(state, Method::POST, &path, None).await?;
            if answer.ok() && answer.body["verified"].as_bool() == Some(false) {
                return Ok(Some(Done::Failed(format!(
                    "{}: {}",
                    text(&answer.body, "reason"),
                    text(&answer.body, "detail")
                ))));
            }
            return Ok(Some(Done::of(
                &answer,
                t.tr("Domain verified.", "Domain bestätigt.").to_owned(),
            )));
        }
        _ => return Ok(None),
    };
    let answer = a.api(state, method, &path, body.as_ref()).await?;
    Ok(Some(Done::of(&answer, notice.to_owned())))
}

/// Makes a test sign-in and answers a page whose form opens it in a new window (the start
/// token travels in the form body, never in a URL) and links to its result.
async fn test(state: &AppState, a: &Admin, name: &str) -> Result<Done, AppError> {
    let t = a.t;
    let answer = a
        .api(
            state,
            Method::POST,
            &format!("/saml-connections/{}/tests", seg(name)),
            None,
        )
        .await?;
    if !answer.ok() {
        return Ok(Done::Failed(answer.problem()));
    }
    let n = &answer.body;
    let result = format!("{}/{}/tests/{}", base(a), seg(name), seg(&text(n, "id")));
    Ok(Done::Show(
        ("saml", t.tr("Test sign-in", "Testanmeldung")),
        vec![
            Block::Text(t.tr(
                "Start the sign-in in a new window and sign in at your IdP as a test user. Nobody is signed in to Latchkey: the window ends on a short page, and the result appears here.",
                "Starten Sie die Anmeldung in einem neuen Fenster und melden Sie sich beim IdP als Testbenutzer an. Niemand wird bei Latchkey angemeldet: das Fenster endet auf einer kurzen Seite, und das Ergebnis erscheint hier.",
            ).to_owned()),
            Block::Form(Form {
                title: t.tr("1. Sign in at the IdP", "1. Beim IdP anmelden").to_owned(),
                action: text(n, "start_url"),
                post: true,
                new_window: true,
                fields: Vec::new(),
                hidden: vec![("start".to_owned(), text(n, "start"))],
                submit: t.tr("Open the IdP in a new window", "IdP in neuem Fenster öffnen").to_owned(),
                danger: None,
            }),
            Block::Link(t.tr("2. See the result", "2. Ergebnis ansehen").to_owned(), result),
        ],
    ))
}
