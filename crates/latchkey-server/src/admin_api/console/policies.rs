//! `GET /t/{tenant}/admin/policies`: the policies an IT admin tunes most (password, second
//! factors, risk bands, sign-up, session lifetimes, account deletion), each section a form of
//! typed fields with a sentence on what each one changes, and a JSON merge patch for the rest.
//! Every form is one `PATCH …/policies` through the admin API, which validates it.

use super::page::{Block, Form, Input, render};
use super::users::field;
use super::{Admin, Done, admin_or_return, need};
use crate::state::AppState;
use crate::web::errors::AppError;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::Method;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::Permission;
use serde_json::{Map, Value, json};

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/policies", web::get().to(policies));
}

/// How a policy field is edited.
#[derive(Clone, Copy)]
enum Kind {
    Number,
    /// A number, or empty for none (`null`).
    OptionalNumber,
    Bool,
    /// One of these values.
    Choice(&'static [&'static str]),
    /// Comma-separated values.
    List,
    /// Text, or empty for none.
    OptionalText,
}

/// A field: its name in the policy, how it is edited, and what it changes (English, German).
struct Field(&'static str, Kind, &'static str, &'static str);

/// A section: its key, what it governs (English, German), and its fields.
struct Section(&'static str, &'static str, &'static str, &'static [Field]);

const SECTIONS: &[Section] = &[
    Section(
        "password",
        "Password rules, after NIST SP 800-63B: length matters; composition rules and expiry mostly push people to predictable passwords. Breached and common passwords are always refused.",
        "Passwortregeln nach NIST SP 800-63B: Länge zählt; Zusammensetzungsregeln und Ablauf führen meist zu vorhersagbaren Passwörtern. Geleakte und häufige Passwörter werden immer abgelehnt.",
        &[
            Field(
                "min_length",
                Kind::Number,
                "Shortest password accepted (at least 8; 12 or more recommended).",
                "Kürzestes zulässiges Passwort (mindestens 8; 12 oder mehr empfohlen).",
            ),
            Field(
                "max_length",
                Kind::Number,
                "Longest password accepted (at least 64, so passphrases and managers work).",
                "Längstes zulässiges Passwort (mindestens 64, damit Passphrasen und Passwortmanager funktionieren).",
            ),
            Field(
                "require_lowercase",
                Kind::Bool,
                "Require a lowercase letter.",
                "Einen Kleinbuchstaben verlangen.",
            ),
            Field(
                "require_uppercase",
                Kind::Bool,
                "Require an uppercase letter.",
                "Einen Großbuchstaben verlangen.",
            ),
            Field(
                "require_digit",
                Kind::Bool,
                "Require a digit.",
                "Eine Ziffer verlangen.",
            ),
            Field(
                "require_symbol",
                Kind::Bool,
                "Require a symbol.",
                "Ein Sonderzeichen verlangen.",
            ),
            Field(
                "expiry_days",
                Kind::OptionalNumber,
                "Days until a password must be changed; empty for never (recommended).",
                "Tage, bis ein Passwort geändert werden muss; leer für nie (empfohlen).",
            ),
            Field(
                "history",
                Kind::Number,
                "How many previous passwords may not be reused; 0 for no history.",
                "Wie viele frühere Passwörter nicht wiederverwendet werden dürfen; 0 für keinen Verlauf.",
            ),
        ],
    ),
    Section(
        "mfa",
        "Second factors. Administrators always need one for this console, whatever is set here.",
        "Zweite Faktoren. Administratoren brauchen für diese Verwaltung immer einen, unabhängig von dieser Einstellung.",
        &[
            Field(
                "mode",
                Kind::Choice(&["off", "optional", "required"]),
                "off: no second factors; optional: users may set one up; required: every user must have one and use it at each sign-in.",
                "off: keine zweiten Faktoren; optional: Benutzer dürfen einen einrichten; required: jeder Benutzer braucht einen und nutzt ihn bei jeder Anmeldung.",
            ),
            Field(
                "methods",
                Kind::List,
                "Methods users may set up, comma-separated: passkey, totp.",
                "Methoden, die Benutzer einrichten dürfen, durch Kommas getrennt: passkey, totp.",
            ),
        ],
    ),
    Section(
        "risk",
        "Sign-in risk: each sign-in gets a score from 0 to 100 with its reasons (new device, impossible travel, a denied address, failures).",
        "Anmelderisiko: jede Anmeldung erhält einen Wert von 0 bis 100 mit Begründung (neues Gerät, unmögliche Reise, gesperrte Adresse, Fehlversuche).",
        &[
            Field(
                "enabled",
                Kind::Bool,
                "Score sign-ins at all.",
                "Anmeldungen überhaupt bewerten.",
            ),
            Field(
                "step_up",
                Kind::Number,
                "From this score a sign-in needs a second factor (refused when the user has none).",
                "Ab diesem Wert braucht eine Anmeldung einen zweiten Faktor (abgelehnt, wenn der Benutzer keinen hat).",
            ),
            Field(
                "deny",
                Kind::Number,
                "From this score a sign-in is refused; above the step-up score. The risk page shows what a change would have done to recent sign-ins.",
                "Ab diesem Wert wird eine Anmeldung abgelehnt; über dem Wert für den zweiten Faktor. Die Risikoseite zeigt, was eine Änderung bei den letzten Anmeldungen bewirkt hätte.",
            ),
            Field(
                "notify_new_device",
                Kind::Bool,
                "Mail the user when they sign in from a device not seen before.",
                "Benutzer per Mail benachrichtigen, wenn sie sich von einem unbekannten Gerät anmelden.",
            ),
            Field(
                "webhook_url",
                Kind::OptionalText,
                "HTTPS URL that receives elevated decisions as signed JSON; empty for none.",
                "HTTPS-URL, die erhöhte Entscheidungen als signiertes JSON erhält; leer für keine.",
            ),
        ],
    ),
    Section(
        "signup",
        "Self-service sign-up: who may create their own account on the sign-in page.",
        "Selbstregistrierung: wer auf der Anmeldeseite ein eigenes Konto anlegen darf.",
        &[
            Field(
                "mode",
                Kind::Choice(&["off", "invite-only", "open", "open-for-domains"]),
                "off: only admins create accounts; invite-only: through invitations; open: anyone; open-for-domains: addresses in the domains below.",
                "off: nur Administratoren legen Konten an; invite-only: über Einladungen; open: jeder; open-for-domains: Adressen der Domains unten.",
            ),
            Field(
                "domains",
                Kind::List,
                "Email domains open-for-domains admits, comma-separated (exact match, no subdomains).",
                "E-Mail-Domains, die open-for-domains zulässt, durch Kommas getrennt (genau, ohne Subdomains).",
            ),
        ],
    ),
    Section(
        "session",
        "Session lifetimes at Latchkey (the single sign-on session, not the portals' own).",
        "Sitzungsdauern bei Latchkey (die Single-Sign-On-Sitzung, nicht die der Portale).",
        &[
            Field(
                "idle_timeout_secs",
                Kind::Number,
                "Seconds without activity after which the session ends (e.g. 1800 for 30 minutes).",
                "Sekunden ohne Aktivität, nach denen die Sitzung endet (z. B. 1800 für 30 Minuten).",
            ),
            Field(
                "absolute_timeout_secs",
                Kind::Number,
                "Seconds after sign-in at which the session ends whatever the activity (e.g. 43200 for 12 hours).",
                "Sekunden nach der Anmeldung, nach denen die Sitzung in jedem Fall endet (z. B. 43200 für 12 Stunden).",
            ),
        ],
    ),
    Section(
        "accounts",
        "The end of accounts: deletion by their users, erasure by an operator.",
        "Das Ende von Konten: Löschung durch ihre Benutzer, Auslöschung durch einen Betreiber.",
        &[
            Field(
                "deletion_grace_days",
                Kind::Number,
                "Days (0 to 90) between a user's request to delete their account and its deletion; an admin can restore it meanwhile. 0 deletes at once.",
                "Tage (0 bis 90) zwischen dem Löschantrag eines Benutzers und der Löschung; ein Administrator kann das Konto bis dahin wiederherstellen. 0 löscht sofort.",
            ),
            Field(
                "erasure_grace_days",
                Kind::Number,
                "Days (0 to 90) between an operator's erasure of a user and its execution (the person's key is destroyed then); the account is closed meanwhile and can be restored. 0 erases at once.",
                "Tage (0 bis 90) zwischen der Auslöschung eines Benutzers durch einen Betreiber und ihrer Ausführung (dann wird der Schlüssel der Person vernichtet); das Konto ist bis dahin geschlossen und kann wiederhergestellt werden. 0 löscht sofort.",
            ),
        ],
    ),
    Section(
        "retention",
        "How long what Latchkey keeps is kept; the retention pass applies it hourly (sessions end with their timeouts, expired codes and tokens go a day after they expire).",
        "Wie lange Latchkey Daten aufbewahrt; der Aufbewahrungslauf wendet das stündlich an (Sitzungen enden mit ihren Zeitlimits, abgelaufene Codes und Tokens einen Tag danach).",
        &[
            Field(
                "audit_days",
                Kind::Number,
                "Days audit events are kept (at least 30).",
                "Tage, die Audit-Ereignisse aufbewahrt werden (mindestens 30).",
            ),
            Field(
                "risk_history_days",
                Kind::Number,
                "Days a user's sign-in history for risk scoring is kept after its last use.",
                "Tage, die der Anmeldeverlauf eines Benutzers für die Risikobewertung nach der letzten Nutzung aufbewahrt wird.",
            ),
            Field(
                "inactive_notify_days",
                Kind::OptionalNumber,
                "Days without a sign-in after which the user is told by mail that the account will be closed; empty: never.",
                "Tage ohne Anmeldung, nach denen der Benutzer per E-Mail erfährt, dass das Konto geschlossen wird; leer: nie.",
            ),
            Field(
                "inactive_disable_days",
                Kind::OptionalNumber,
                "Days without a sign-in after which the account is disabled; empty: never.",
                "Tage ohne Anmeldung, nach denen das Konto deaktiviert wird; leer: nie.",
            ),
            Field(
                "inactive_delete_days",
                Kind::OptionalNumber,
                "Days without a sign-in after which the account is deleted; empty: never.",
                "Tage ohne Anmeldung, nach denen das Konto gelöscht wird; leer: nie.",
            ),
            Field(
                "consent_days",
                Kind::OptionalNumber,
                "Days a consent lasts unless given again; empty: until withdrawn.",
                "Tage, die eine Einwilligung gilt, wenn sie nicht erneut erteilt wird; leer: bis zum Widerruf.",
            ),
            Field(
                "invitation_days",
                Kind::Number,
                "Days accepted, withdrawn or expired invitations are kept.",
                "Tage, die angenommene, widerrufene oder abgelaufene Einladungen aufbewahrt werden.",
            ),
            Field(
                "outbox_days",
                Kind::Number,
                "Days delivered or abandoned mail and webhook messages are kept.",
                "Tage, die zugestellte oder aufgegebene E-Mails und Webhook-Nachrichten aufbewahrt werden.",
            ),
        ],
    ),
    Section(
        "terms",
        "Terms of service users accept before an application gets a code; a new version asks everyone again.",
        "Nutzungsbedingungen, die Benutzer akzeptieren, bevor eine Anwendung einen Code erhält; eine neue Version fragt alle erneut.",
        &[
            Field(
                "version",
                Kind::OptionalText,
                "A label of the text in force (e.g. 2026-12); empty: no terms are asked for.",
                "Eine Bezeichnung des geltenden Textes (z. B. 2026-12); leer: keine Bedingungen.",
            ),
            Field(
                "url",
                Kind::OptionalText,
                "The https address of the text.",
                "Die https-Adresse des Textes.",
            ),
        ],
    ),
];

async fn policies(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let a = admin_or_return!(&state, &req, tenant);
    need(&a, Permission::PoliciesRead)?;
    let t = a.t;
    let p: Value = a.get(&state, "/policies").await?;
    let back = format!("/t/{}/admin/policies", a.tenant.slug);
    let mut blocks = Vec::new();
    for section in SECTIONS {
        let Section(key, en, de, fields) = section;
        let current = &p[key];
        blocks.push(Block::Heading((*key).to_owned()));
        blocks.push(Block::Text(t.tr(en, de).to_owned()));
        if a.may(Permission::PoliciesWrite) {
            blocks.push(Block::Form(section_form(&a, section, current, &back)));
        } else {
            let pairs = fields
                .iter()
                .map(|Field(name, kind, en, de)| {
                    (format!("{name} ({})", t.tr(en, de)), shown(*kind, &current[name]))
                })
                .collect();
            blocks.push(Block::Pairs {
                caption: format!("{key} · {}", t.tr("current values", "aktuelle Werte")),
                pairs,
            });
        }
    }
    if a.may(Permission::PoliciesWrite) {
        blocks.push(Block::Form(patch_form(&a, &back)));
    }
    render(
        &state,
        &req,
        &a,
        ("policies", t.tr("Policies", "Richtlinien")),
        &blocks,
    )
}

/// A field's current value as the form shows it.
fn shown(kind: Kind, v: &Value) -> String {
    match (kind, v) {
        (Kind::Bool, Value::Bool(b)) => if *b { "on" } else { "" }.to_owned(),
        (Kind::List, Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect::<Vec<_>>()
            .join(", "),
        (_, Value::Null) => String::new(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// One section's form: a typed input per field, its explanation under it.
fn section_form(a: &Admin, Section(key, _, _, fields): &Section, current: &Value, back: &str) -> Form {
    let t = a.t;
    let mut form = Form::action(
        a,
        "policy-section",
        &format!("{key} · {}", t.tr("change", "ändern")),
        t.tr("Save", "Speichern"),
        back,
    )
    .hidden("section", key);
    for Field(name, kind, en, de) in *fields {
        let value = shown(*kind, &current[name]);
        let input = match kind {
            Kind::Choice(options) => Input::select(
                name,
                name,
                options
                    .iter()
                    .map(|o| ((*o).to_owned(), (*o).to_owned()))
                    .collect(),
                &value,
            ),
            Kind::Bool => Input::text(name, name, &value).kind("checkbox"),
            Kind::Number | Kind::OptionalNumber => Input::text(name, name, &value).kind("number"),
            Kind::List | Kind::OptionalText => Input::text(name, name, &value),
        };
        form = form.field(input.help(t.tr(en, de)));
    }
    form
}

/// Everything else (branding, tokens, keys, throttling, email) as a JSON merge patch.
fn patch_form(a: &Admin, back: &str) -> Form {
    let t = a.t;
    Form::action(
        a,
        "policy-patch",
        t.tr(
            "Any other policy (JSON merge patch)",
            "Jede andere Richtlinie (JSON-Merge-Patch)",
        ),
        t.tr("Apply change", "Änderung anwenden"),
        back,
    )
    .field(
        Input::text("patch", t.tr("JSON merge patch", "JSON-Merge-Patch"), "")
            .kind("textarea")
            .required()
            .help(t.tr(
                "For example {\"tokens\": {\"access_token_ttl_secs\": 600}}. The API's schema lists every field.",
                "Zum Beispiel {\"tokens\": {\"access_token_ttl_secs\": 600}}. Das Schema der API nennt jedes Feld.",
            )),
    )
}

/// A section form's values as the merge patch `{section: {field: value}}`, or the field that
/// is not what its kind needs.
fn section_patch(f: &FormParams) -> Result<Value, String> {
    let key = field(f, "section").unwrap_or_default();
    let Some(Section(_, _, _, fields)) = SECTIONS.iter().find(|s| s.0 == key) else {
        return Err(format!("no policy section {key:?}"));
    };
    let mut out = Map::new();
    for Field(name, kind, ..) in *fields {
        let raw = field(f, name);
        let value = match (kind, raw) {
            (Kind::Bool, v) => Value::Bool(v == Some("on")),
            (Kind::OptionalNumber | Kind::OptionalText, None) => Value::Null,
            (Kind::Number | Kind::OptionalNumber, Some(v)) => {
                json!(
                    v.parse::<u64>()
                        .map_err(|_| format!("{name}: {v:?} is not a whole number"))?
                )
            }
            (Kind::Number, None) => return Err(format!("{name}: a number is needed")),
            (Kind::Choice(options), Some(v)) if options.contains(&v) => json!(v),
            (Kind::Choice(_), v) => {
                return Err(format!(
                    "{name}: {:?} is not one of the choices",
                    v.unwrap_or_default()
                ));
            }
            (Kind::List, v) => json!(
                v.unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            ),
            (Kind::OptionalText, Some(v)) => json!(v),
        };
        out.insert((*name).to_owned(), value);
    }
    Ok(json!({ key: out }))
}

/// The policy actions by name, or `None` when `op` is not one.
pub(super) async fn action(
    state: &AppState,
    a: &Admin,
    op: &str,
    f: &FormParams,
) -> Result<Option<Done>, AppError> {
    let t = a.t;
    let patch = match op {
        "policy-section" => section_patch(f),
        "policy-patch" => {
            serde_json::from_str::<Value>(field(f, "patch").unwrap_or_default()).map_err(|_| {
                t.tr(
                    "The change is not valid JSON.",
                    "Die Änderung ist kein gültiges JSON.",
                )
                .to_owned()
            })
        }
        _ => return Ok(None),
    };
    let patch = match patch {
        Ok(p) => p,
        Err(why) => return Ok(Some(Done::Failed(why))),
    };
    let answer = a.api(state, Method::PATCH, "/policies", Some(&patch)).await?;
    Ok(Some(Done::of(
        &answer,
        t.tr("Policy changed.", "Richtlinie geändert.").to_owned(),
    )))
}
