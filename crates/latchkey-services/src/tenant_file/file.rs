//! The tenant file: its types, parsing (YAML or JSON, bounded), the refusal of secrets written
//! in clear, and the checks that need only the file (names unique, references resolvable).

use super::refuse;
use crate::ServiceError;
use crate::clients::ClientSpec;
use latchkey_core::{
    AccessTokenFormat, AttributeKind, AuthMethod, ClientSettings, ClientType, EditableBy, GrantType,
    SamlOptions, TenantPolicy,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The largest file accepted, in bytes (1 MiB).
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// How the file is written. JSON is YAML too, but the API parses JSON with the JSON parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// One tenant, as code. Lists left out (or empty) manage nothing of that kind only in the sense
/// that everything the tenant has of it is "not in the file": kept, or deleted with `prune`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantFile {
    /// The tenant's slug.
    pub tenant: String,
    /// The name people see; left out, it is not managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The whole policy (what is left out inside it takes its default); left out entirely, the
    /// tenant's policy is not managed. The risk webhook's secret is never in it: the stored one
    /// is kept.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "policy_out"
    )]
    pub policy: Option<TenantPolicy>,
    /// The user-attribute schema.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<AttributeSpec>,
    /// Groups by name, each with its parent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupSpec>,
    /// Tenant roles and the groups they are assigned to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<RoleSpec>,
    /// OAuth/OIDC clients by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<ClientEntry>,
    /// SAML connections by name. Their SP key and certificate are Latchkey's, never in the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saml_connections: Vec<SamlConnectionEntry>,
}

/// The policy as written: without the risk webhook's sealed secret (which the file never
/// carries), rather than with it as `null`.
#[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<T>`
fn policy_out<S: serde::Serializer>(policy: &Option<TenantPolicy>, s: S) -> Result<S::Ok, S::Error> {
    let mut value = serde_json::to_value(policy).map_err(serde::ser::Error::custom)?;
    if let Some(risk) = value.pointer_mut("/risk").and_then(Value::as_object_mut) {
        risk.remove("webhook_secret_sealed");
    }
    value.serialize(s)
}

/// A declared user attribute. Its kind can't change in place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub kind: AttributeKind,
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub unique: bool,
    #[serde(default = "admin")]
    pub editable_by: EditableBy,
}

fn admin() -> EditableBy {
    EditableBy::Admin
}

/// A group; `parent` names another group of the file (left out: a top-level group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

/// A tenant role and the groups of the file it is assigned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

/// A client's own role and the groups of the file it is assigned to.
pub type ClientRoleSpec = RoleSpec;

/// Where a client secret comes from at apply time: an environment variable or a file (its
/// whole content, one trailing newline removed), read by the CLI. Never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    Env(String),
    File(PathBuf),
}

impl std::fmt::Display for SecretRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(name) => write!(f, "env {name}"),
            SecretRef::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A client, by name (unique in the file and in the tenant). What is left out gets the
/// defaults of `latchkey client create`; `client_id` is the store's and not in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClientEntry {
    pub name: String,
    #[serde(default = "confidential")]
    pub client_type: ClientType,
    /// `none` for a public client, else `client_secret_basic`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_method: Option<AuthMethod>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    /// The code flow with refresh when empty.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// The OpenID Connect basics, refresh, roles and groups when empty.
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default = "jwt")]
    pub access_token_format: AccessTokenFormat,
    #[serde(default = "yes")]
    pub require_pkce: bool,
    #[serde(default)]
    pub introspect_others: bool,
    #[serde(default)]
    pub first_party: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Token lifetimes, resources, claim mappings.
    #[serde(default)]
    pub settings: ClientSettings,
    /// The client's own roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<ClientRoleSpec>,
    /// A reference to the secret; left out, a new client gets a generated one (shown once)
    /// and an existing client keeps its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<SecretRef>,
}

fn confidential() -> ClientType {
    ClientType::Confidential
}
fn jwt() -> AccessTokenFormat {
    AccessTokenFormat::Jwt
}
fn yes() -> bool {
    true
}

impl ClientEntry {
    /// The registration this entry asks for, as `client create` would make it.
    pub(crate) fn spec(&self) -> ClientSpec {
        ClientSpec {
            name: self.name.clone(),
            client_type: self.client_type,
            auth_method: self.auth_method,
            redirect_uris: self.redirect_uris.clone(),
            post_logout_redirect_uris: self.post_logout_redirect_uris.clone(),
            grant_types: self.grant_types.clone(),
            scopes: self.scopes.clone(),
            access_token_format: self.access_token_format,
            require_pkce: self.require_pkce,
            introspect_others: self.introspect_others,
            first_party: self.first_party,
            jwks_uri: self.jwks_uri.clone(),
            jwks: self.jwks.clone(),
            settings: self.settings.clone(),
        }
    }
}

/// A SAML connection, by its URL-safe `name`. The IdP metadata comes from `metadata_url`
/// (fetched at apply, then refreshed hourly by the server) or `metadata_xml` (the document
/// inline, not refreshed): exactly one of them. `options` are the connection's `SamlOptions`,
/// what is left out taking its default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SamlConnectionEntry {
    pub name: String,
    /// Shown on the sign-in page; left out, the name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_xml: Option<String>,
    #[serde(default)]
    pub options: SamlOptions,
}

impl SamlConnectionEntry {
    /// The name shown: `display_name`, else the name (as `saml add` does).
    pub(crate) fn shown_name(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| self.name.clone())
    }

    /// The options as the store keeps them: a pinned metadata signer as base64 DER.
    pub(crate) fn stored_options(&self) -> SamlOptions {
        let mut o = self.options.clone();
        if let Some(pem) = &o.metadata_signer {
            o.metadata_signer = Some(crate::saml::certificate_base64(pem));
        }
        o
    }
}

/// Parses a tenant file: at most [`MAX_FILE_BYTES`], YAML aliases and nesting bounded, no secret
/// in clear anywhere, unknown fields refused, names unique and references resolvable.
pub fn parse(text: &str, format: Format) -> Result<TenantFile, ServiceError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(refuse("(file)", format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    let raw: Value = match format {
        Format::Yaml => serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| e.to_string()),
        Format::Json => serde_json::from_str(text).map_err(|e| e.to_string()),
    }
    .map_err(|e| refuse("(file)", format!("not a valid tenant file: {e}")))?;
    if !raw.is_object() {
        return Err(refuse(
            "(file)",
            "a tenant file is a mapping with `tenant:` at the top",
        ));
    }
    no_secrets(&raw, "")?;
    saml_option_names(&raw)?;
    let file: TenantFile = serde_json::from_value(raw).map_err(|e| refuse("(file)", e.to_string()))?;
    check(&file)?;
    Ok(file)
}

/// YAML parsing within bounds: one document, few anchors and aliases and little replay of what
/// they name (an alias bomb is refused, not expanded), shallow nesting.
fn yaml_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 1;
    budget.max_anchors = 256;
    budget.max_aliases = 256;
    budget.max_recorded_anchor_events = 20_000;
    budget.max_recorded_anchor_bytes = MAX_FILE_BYTES;
    budget.max_nodes = 100_000;
    budget.max_depth = 32;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// Keys whose value is a secret when it is a string or a number.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "private_key",
        "api_key",
        "apikey",
        "credential",
    ]
    .iter()
    .any(|w| k == *w || k.ends_with(&format!("_{w}")) || k.starts_with(&format!("{w}_")))
        || k.ends_with("_sealed")
}

/// Strings that are secrets wherever they stand: an admin token, a private key.
fn secret_value(s: &str) -> bool {
    s.starts_with("lka_") || s.contains("PRIVATE KEY-----")
}

/// Refuses a secret written in clear, naming where: a `client_secret` (or any `…_secret`,
/// `password`, `token`, `…_sealed` key) with a plain value, or a value that is an admin token
/// or a private key.
fn no_secrets(v: &Value, at: &str) -> Result<(), ServiceError> {
    let clear = "a secret in clear is refused: write a reference instead, {env: NAME} or {file: PATH}";
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                let here = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                if secret_key(key) && (value.is_string() || value.is_number()) {
                    return Err(refuse(here, clear));
                }
                no_secrets(value, &here)?;
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                no_secrets(item, &format!("{at}[{i}]"))?;
            }
        }
        Value::String(s) if secret_value(s) => return Err(refuse(at, clear)),
        _ => {}
    }
    Ok(())
}

/// Refuses members of `saml_connections[].options` (and of its `mapping`) that `SamlOptions`
/// does not have: serde would skip them silently, and a misspelt option must be an error.
fn saml_option_names(raw: &Value) -> Result<(), ServiceError> {
    let mut known = serde_json::to_value(SamlOptions::default()).unwrap_or_default();
    if let Some(k) = known.as_object_mut() {
        k.entry("metadata_signer").or_insert(Value::Null);
        k.entry("group_map").or_insert(Value::Null);
    }
    let entries = raw.get("saml_connections").and_then(Value::as_array);
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let Some(options) = entry.get("options") else {
            continue;
        };
        let at = format!("saml_connections[{i}].options");
        unknown_member(&at, options, &known)?;
        if let Some(mapping) = options.get("mapping") {
            unknown_member(&format!("{at}.mapping"), mapping, &known["mapping"])?;
        }
    }
    Ok(())
}

fn unknown_member(at: &str, given: &Value, known: &Value) -> Result<(), ServiceError> {
    let Some(members) = given.as_object() else {
        return Ok(()); // the typed parse names the wrong shape
    };
    match members.keys().find(|k| known.get(k.as_str()).is_none()) {
        Some(k) => Err(refuse(format!("{at}.{k}"), "not an option of a SAML connection")),
        None => Ok(()),
    }
}

/// Every name once per kind, parents and assigned groups among the file's groups, no cycle of
/// parents.
fn check(file: &TenantFile) -> Result<(), ServiceError> {
    latchkey_core::validate::slug(&file.tenant).map_err(|e| refuse("tenant", e.message))?;
    unique("attributes", file.attributes.iter().map(|a| a.name.as_str()))?;
    unique("groups", file.groups.iter().map(|g| g.name.trim()))?;
    unique("roles", file.roles.iter().map(|r| r.name.as_str()))?;
    unique("clients", file.clients.iter().map(|c| c.name.trim()))?;
    let groups: BTreeSet<&str> = file.groups.iter().map(|g| g.name.trim()).collect();
    let known = |at: String, name: &str| {
        if groups.contains(name.trim()) {
            Ok(())
        } else {
            Err(refuse(at, format!("group {name:?} is not in the file's groups")))
        }
    };
    for (i, g) in file.groups.iter().enumerate() {
        if let Some(p) = &g.parent {
            known(format!("groups[{i}].parent"), p)?;
        }
    }
    for (i, r) in file.roles.iter().enumerate() {
        for (j, g) in r.groups.iter().enumerate() {
            known(format!("roles[{i}].groups[{j}]"), g)?;
        }
    }
    for (i, c) in file.clients.iter().enumerate() {
        unique(
            &format!("clients[{i}].roles"),
            c.roles.iter().map(|r| r.name.as_str()),
        )?;
        for (j, r) in c.roles.iter().enumerate() {
            for (k, g) in r.groups.iter().enumerate() {
                known(format!("clients[{i}].roles[{j}].groups[{k}]"), g)?;
            }
        }
    }
    unique(
        "saml_connections",
        file.saml_connections.iter().map(|c| c.name.as_str()),
    )?;
    for (i, c) in file.saml_connections.iter().enumerate() {
        let at = format!("saml_connections[{i}]");
        latchkey_core::validate::slug(&c.name).map_err(|e| refuse(format!("{at}.name"), e.message))?;
        // A URL is checked by the fetch (`Metadata::fetch`), the one place its policy lives.
        if c.metadata_url.is_some() == c.metadata_xml.is_some() {
            return Err(refuse(at, "give metadata_url or metadata_xml (exactly one)"));
        }
    }
    no_parent_cycle(file)
}

fn unique<'a>(at: &str, names: impl Iterator<Item = &'a str>) -> Result<(), ServiceError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(refuse(at, format!("{name:?} appears twice")));
        }
    }
    Ok(())
}

fn no_parent_cycle(file: &TenantFile) -> Result<(), ServiceError> {
    let parent: BTreeMap<&str, &str> = file
        .groups
        .iter()
        .filter_map(|g| Some((g.name.trim(), g.parent.as_deref()?.trim())))
        .collect();
    for start in parent.keys() {
        let mut at = *start;
        for _ in 0..=parent.len() {
            match parent.get(at) {
                Some(p) if p == start => {
                    return Err(refuse(
                        "groups",
                        format!("group {start:?} is inside itself through its parents"),
                    ));
                }
                Some(p) => at = p,
                None => break,
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, Format::Yaml).unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_file_parses_with_defaults() {
        let f = parse("tenant: acme\nclients:\n  - name: Portal\n", Format::Yaml).unwrap();
        assert_eq!(f.clients[0].client_type, ClientType::Confidential);
        assert!(f.clients[0].require_pkce && f.policy.is_none());
        let j = parse(
            r#"{"tenant": "acme", "groups": [{"name": "staff"}]}"#,
            Format::Json,
        )
        .unwrap();
        assert_eq!(j.groups[0].name, "staff");
    }

    #[test]
    fn a_secret_in_clear_is_refused_naming_where() {
        let e = err("tenant: acme\nclients:\n  - name: P\n    client_secret: hunter2hunter2\n");
        assert!(
            e.contains("clients[0].client_secret") && e.contains("{env: NAME}"),
            "{e}"
        );
        let e = err("tenant: acme\npolicy:\n  risk:\n    webhook_secret_sealed: abc\n");
        assert!(e.contains("policy.risk.webhook_secret_sealed"), "{e}");
        let e = err("tenant: acme\ngroups:\n  - name: g\n    description: lka_abcdef\n");
        assert!(e.contains("groups[0].description"), "{e}");
        let ok = parse(
            "tenant: acme\nclients:\n  - name: P\n    client_secret: {env: PORTAL_SECRET}\n",
            Format::Yaml,
        )
        .unwrap();
        assert_eq!(
            ok.clients[0].client_secret,
            Some(SecretRef::Env("PORTAL_SECRET".into()))
        );
    }

    #[test]
    fn unknown_fields_bad_references_and_cycles_are_refused() {
        assert!(err("tenant: acme\ngroupz: []\n").contains("groupz"));
        assert!(err("tenant: acme\nclients:\n  - name: P\n    colour: red\n").contains("colour"));
        assert!(err("tenant: acme\ngroups:\n  - {name: a, parent: b}\n").contains("groups[0].parent"));
        let cycle = "tenant: acme\ngroups:\n  - {name: a, parent: b}\n  - {name: b, parent: a}\n";
        assert!(err(cycle).contains("inside itself"));
        assert!(err("tenant: acme\ngroups:\n  - {name: a}\n  - {name: a}\n").contains("twice"));
        assert!(err("- a\n- b\n").contains("mapping"));
        assert!(err("tenant: [unclosed\n").contains("not a valid tenant file"));
    }

    #[test]
    fn saml_connections_need_one_metadata_source_and_known_options() {
        let f = parse(
            "tenant: acme\nsaml_connections:\n  - name: corp\n    metadata_url: https://idp.example/m\n",
            Format::Yaml,
        )
        .unwrap();
        assert!(
            f.saml_connections[0].options.jit,
            "left out, options take their defaults"
        );
        let both = "tenant: acme\nsaml_connections:\n  - {name: corp, metadata_url: u, metadata_xml: x}\n";
        assert!(err(both).contains("exactly one"));
        let neither = "tenant: acme\nsaml_connections:\n  - {name: corp}\n";
        assert!(err(neither).contains("saml_connections[0]"));
        let typo =
            "tenant: acme\nsaml_connections:\n  - {name: corp, metadata_xml: x, options: {jitt: true}}\n";
        assert!(err(typo).contains("saml_connections[0].options.jitt"));
        let mapping = "tenant: acme\nsaml_connections:\n  - {name: corp, metadata_xml: x, options: {mapping: {mail: m}}}\n";
        assert!(err(mapping).contains("saml_connections[0].options.mapping.mail"));
        let name = "tenant: acme\nsaml_connections:\n  - {name: Corp SSO, metadata_xml: x}\n";
        assert!(err(name).contains("saml_connections[0].name"));
        let twice = "tenant: acme\nsaml_connections:\n  - {name: corp, metadata_xml: x}\n  - {name: corp, metadata_xml: z}\n";
        let e = err(twice);
        assert!(e.contains("twice"), "{e}");
    }

    #[test]
    fn oversized_files_and_alias_bombs_are_refused() {
        let big = format!("tenant: acme\n# {}\n", "x".repeat(MAX_FILE_BYTES));
        assert!(err(&big).contains("larger than"));
        // Ten levels of ten aliases each: 10^10 nodes if expanded.
        let mut lines = vec!["a0: &a0 [x, x, x, x, x, x, x, x, x, x]".to_owned()];
        for i in 1..10 {
            let p = format!("*a{}", i - 1);
            lines.push(format!("a{i}: &a{i} [{}]", [p.as_str(); 10].join(", ")));
        }
        lines.push(String::new());
        let mut bomb = lines.join("\n");
        bomb.push_str("tenant: acme\n");
        assert!(err(&bomb).contains("not a valid tenant file"));
    }
}
