//! One page template for the whole console: a title, the navigation the admin's permissions
//! allow, a notice or error, and blocks (tables, key-value lists, forms, text). Pages are built
//! as data, so every page gets the same labels, landmarks and CSRF fields.

use super::Admin;
use crate::state::AppState;
use crate::web::errors::AppError;
use crate::web::respond::{html, query_param};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use latchkey_core::Permission;

/// The console's language: English or German, as the sign-in pages picked it.
#[derive(Clone, Copy)]
pub(crate) struct T {
    pub lang: &'static str,
}

impl T {
    pub fn of(lang: &'static str) -> T {
        T { lang }
    }

    /// The text in this language (each console string is written in both, side by side).
    pub fn tr(&self, en: &'static str, de: &'static str) -> &'static str {
        if self.lang == "de" { de } else { en }
    }
}

/// A part of a page.
pub(crate) enum Block {
    Heading(String),
    Text(String),
    Table(Table),
    Pairs {
        caption: String,
        pairs: Vec<(String, String)>,
    },
    Form(Form),
    /// A link: its text and where it goes.
    Link(String, String),
    /// Preformatted text (the JSON of a claim preview).
    Pre {
        caption: String,
        text: String,
    },
}

pub(crate) struct Table {
    pub caption: String,
    pub head: Vec<String>,
    pub rows: Vec<Row>,
    /// Said instead of an empty table.
    pub empty: String,
}

/// A table row; `link` makes its first cell a link.
pub(crate) struct Row {
    pub cells: Vec<String>,
    pub link: Option<String>,
}

pub(crate) struct Form {
    pub title: String,
    /// `do/{op}` for a console action (POST, with the CSRF token), or a page (GET, a search).
    pub action: String,
    pub post: bool,
    /// Submits into a new window (a test sign-in at the IdP).
    pub new_window: bool,
    pub fields: Vec<Input>,
    pub hidden: Vec<(String, String)>,
    pub submit: String,
    /// A destructive action: styled as such, with a confirmation checkbox.
    pub danger: Option<String>,
}

pub(crate) struct Input {
    pub name: String,
    pub label: String,
    /// `text`, `email`, `password`, `number`, `select`, `textarea`, `checkbox` or `file`.
    pub kind: &'static str,
    pub value: String,
    pub required: bool,
    pub options: Vec<(String, String)>,
    pub help: String,
}

impl Input {
    pub fn text(name: &str, label: &str, value: &str) -> Input {
        Input {
            name: name.to_owned(),
            label: label.to_owned(),
            kind: "text",
            value: value.to_owned(),
            required: false,
            options: Vec::new(),
            help: String::new(),
        }
    }

    pub fn required(mut self) -> Input {
        self.required = true;
        self
    }

    pub fn kind(mut self, kind: &'static str) -> Input {
        self.kind = kind;
        self
    }

    pub fn help(mut self, help: &str) -> Input {
        help.clone_into(&mut self.help);
        self
    }

    pub fn select(name: &str, label: &str, options: Vec<(String, String)>, value: &str) -> Input {
        Input {
            options,
            kind: "select",
            ..Input::text(name, label, value)
        }
    }
}

impl Form {
    /// A console action form: POST to `do/{op}`, coming back to `back`.
    pub fn action(a: &Admin, op: &str, title: &str, submit: &str, back: &str) -> Form {
        Form {
            title: title.to_owned(),
            action: format!("/t/{}/admin/do/{op}", a.tenant.slug),
            post: true,
            new_window: false,
            fields: Vec::new(),
            hidden: vec![("back".to_owned(), back.to_owned())],
            submit: submit.to_owned(),
            danger: None,
        }
    }

    /// A search or filter form: GET to a page, no token.
    pub fn query(title: &str, action: String, submit: &str, fields: Vec<Input>) -> Form {
        Form {
            title: title.to_owned(),
            action,
            post: false,
            new_window: false,
            fields,
            hidden: Vec::new(),
            submit: submit.to_owned(),
            danger: None,
        }
    }

    pub fn field(mut self, i: Input) -> Form {
        self.fields.push(i);
        self
    }

    pub fn hidden(mut self, name: &str, value: &str) -> Form {
        self.hidden.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The form carries a file, so it posts `multipart/form-data`.
    pub fn upload(&self) -> bool {
        self.fields.iter().any(|i| i.kind == "file")
    }

    /// Marks a destructive action, which then needs `confirm` ticked.
    pub fn danger(mut self, confirm: &str) -> Form {
        debug_assert!(
            super::DESTRUCTIVE
                .iter()
                .any(|op| self.action.ends_with(&format!("/do/{op}"))),
            "{} is not listed as destructive",
            self.action
        );
        self.danger = Some(confirm.to_owned());
        self
    }
}

/// A navigation entry.
pub(crate) struct Nav {
    pub label: &'static str,
    pub href: String,
    pub current: bool,
}

/// The console's sections, each shown only to an admin who may read it.
fn nav(a: &Admin, current: &str) -> Vec<Nav> {
    let t = a.t;
    let s = &a.tenant.slug;
    if a.system {
        return [
            ("", t.tr("Tenants", "Mandanten")),
            ("audit", t.tr("System audit", "System-Audit")),
        ]
        .into_iter()
        .map(|(path, label)| Nav {
            label,
            href: format!("/t/{s}/admin/system/{path}"),
            current: path == current,
        })
        .collect();
    }
    let all: [(&str, &'static str, Option<Permission>); 9] = [
        ("", t.tr("Overview", "Übersicht"), None),
        ("users", t.tr("Users", "Benutzer"), Some(Permission::UsersRead)),
        (
            "groups",
            t.tr("Groups and roles", "Gruppen und Rollen"),
            Some(Permission::GroupsRead),
        ),
        (
            "clients",
            t.tr("Applications", "Anwendungen"),
            Some(Permission::ClientsRead),
        ),
        (
            "saml",
            t.tr("SAML connections", "SAML-Verbindungen"),
            Some(Permission::SamlRead),
        ),
        (
            "policies",
            t.tr("Policies", "Richtlinien"),
            Some(Permission::PoliciesRead),
        ),
        (
            "keys",
            t.tr("Signing keys", "Signaturschlüssel"),
            Some(Permission::KeysRead),
        ),
        (
            "audit",
            t.tr("Audit log", "Audit-Protokoll"),
            Some(Permission::AuditRead),
        ),
        (
            "risk",
            t.tr("Sign-in risk", "Anmelderisiko"),
            Some(Permission::AuditRead),
        ),
    ];
    all.into_iter()
        .filter(|(_, _, p)| p.is_none_or(|p| a.may(p)))
        .map(|(path, label, _)| Nav {
            label,
            href: format!("/t/{s}/admin/{path}"),
            current: path == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "console/page.html")]
struct PageHtml<'a> {
    t: T,
    slug: &'a str,
    tenant_name: &'a str,
    title: &'a str,
    admin_name: &'a str,
    nav: Vec<Nav>,
    notice: Option<String>,
    error: Option<String>,
    csrf: String,
    blocks: &'a [Block],
}

impl PageHtml<'_> {
    /// A form's id: its position among the page's blocks.
    fn form_id(&self, b: &Block) -> usize {
        self.blocks.iter().position(|x| std::ptr::eq(x, b)).unwrap_or(0)
    }
}

/// Renders a console page of section `section` for `a`.
pub(crate) fn render(
    state: &AppState,
    req: &HttpRequest,
    a: &Admin,
    (section, title): (&str, &str),
    blocks: &[Block],
) -> Result<HttpResponse, AppError> {
    render_with(state, req, a, (section, title), blocks, None)
}

/// [`render`] with an error of its own (a refused form shown again).
pub(crate) fn render_with(
    state: &AppState,
    req: &HttpRequest,
    a: &Admin,
    (section, title): (&str, &str),
    blocks: &[Block],
    error: Option<String>,
) -> Result<HttpResponse, AppError> {
    let name = a.user.display_name.as_deref().unwrap_or(&a.user.username);
    let page = PageHtml {
        t: a.t,
        slug: &a.tenant.slug,
        tenant_name: &a.tenant.display_name,
        title,
        admin_name: name,
        nav: nav(a, section),
        notice: query_param(req, "notice").map(|n| n.chars().take(300).collect()),
        error: error.or_else(|| query_param(req, "error").map(|n| n.chars().take(300).collect())),
        csrf: a.csrf(),
        blocks,
    };
    html(state, req, StatusCode::OK, page.render())
}

/// A time (Unix ms) as the console shows it.
pub(crate) fn when(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
            ))
            .ok()
        })
        .unwrap_or_default()
}
