//! The person an upstream sign-in names, read through the connection's claim mapping: from the
//! verified ID token first, then the user endpoint.

use crate::FederationError;
use latchkey_core::{OidcConnection, UpstreamKind};
use serde_json::{Map, Value};

/// At most this many upstream groups are read, each at most 256 characters.
const MAX_GROUPS: usize = 200;

/// Who signed in upstream, as the account rules need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// The identity's key within the connection: `sub` (OIDC; `{tid}:{sub}` for a `{tenantid}`
    /// issuer), or the mapped subject claim of the user endpoint (OAuth 2.0).
    pub subject: String,
    pub email: Option<String>,
    /// The upstream says it verified the address (`email_verified: true`).
    pub email_verified: bool,
    pub name: Option<String>,
    pub groups: Vec<String>,
    /// `amr` as the upstream sent it (bounded).
    pub amr: Vec<String>,
    /// The upstream's `auth_time`, in milliseconds.
    pub auth_time: Option<i64>,
    /// (attribute, value) for each claim of the connection's `attribute_map` the upstream sent.
    pub attributes: Vec<(String, Value)>,
}

impl Upstream {
    /// RFC 8176: the upstream says it used more than one factor.
    pub fn multi_factor(&self) -> bool {
        self.amr.iter().any(|m| m == "mfa")
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()).filter(|s| !s.is_empty()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn strings(v: &Value, max: usize) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(scalar)
            .filter(|s| s.len() <= 256)
            .take(max)
            .collect(),
        other => scalar(other).filter(|s| s.len() <= 256).into_iter().collect(),
    }
}

/// The mapped address, and whether the upstream vouches for it: `email_verified: true` from the
/// same document as the address, and only for the standard `email` claim (a verified flag says
/// nothing about `preferred_username` or `upn`). Never for OAuth 2.0 providers (their user
/// endpoints have no such claim) nor Entra's multi-tenant issuer, whose `email` any directory
/// admin can set (the nOAuth finding).
fn email_of(
    c: &OidcConnection,
    id_claims: Option<&Map<String, Value>>,
    userinfo: Option<&Map<String, Value>>,
) -> (Option<String>, bool) {
    let claim = c.options.mapping.email.as_str();
    let from = |doc: Option<&Map<String, Value>>| {
        let doc = doc?;
        let email = doc
            .get(claim)
            .and_then(scalar)
            .and_then(|e| latchkey_core::validate::email(&e).ok())?;
        let vouched = claim == "email" && doc.get("email_verified") == Some(&Value::Bool(true));
        Some((email, vouched))
    };
    let trusted_kind = c.kind == UpstreamKind::Oidc && !c.templated();
    match from(id_claims).or_else(|| from(userinfo)) {
        Some((email, vouched)) => (Some(email), vouched && trusted_kind),
        None => (None, false),
    }
}

/// Maps the verified ID-token claims (`None` for OAuth 2.0) and the user endpoint's answer to
/// the person. UserInfo's `sub` must be the ID token's (OIDC Core §5.3.2).
pub fn identity(
    c: &OidcConnection,
    id_claims: Option<&Map<String, Value>>,
    userinfo: Option<&Map<String, Value>>,
) -> Result<Upstream, FederationError> {
    let get = |name: &str| {
        id_claims
            .and_then(|m| m.get(name))
            .or_else(|| userinfo.and_then(|m| m.get(name)))
    };
    let subject = match (c.kind, id_claims) {
        (UpstreamKind::Oidc, Some(id)) => {
            let sub = id
                .get("sub")
                .and_then(scalar)
                .ok_or_else(|| FederationError::NoSubject("the ID token has no sub".into()))?;
            // OIDC Core §5.3.2: UserInfo's `sub` must be there and be the ID token's, or its
            // claims are someone else's.
            if let Some(info) = userinfo
                && info.get("sub").and_then(scalar).as_deref() != Some(sub.as_str())
            {
                return Err(FederationError::SubjectMismatch);
            }
            match id.get("tid").and_then(scalar).filter(|_| c.templated()) {
                Some(tid) => format!("{tid}:{sub}"),
                None => sub,
            }
        }
        _ => userinfo
            .and_then(|u| u.get(&c.options.mapping.subject))
            .and_then(scalar)
            .ok_or_else(|| {
                FederationError::NoSubject(format!(
                    "the user endpoint has no {:?}",
                    c.options.mapping.subject
                ))
            })?,
    };
    if subject.len() > 255 {
        return Err(FederationError::NoSubject(
            "the subject is longer than 255 bytes".into(),
        ));
    }
    let (email, email_verified) = email_of(c, id_claims, userinfo);
    let name = get(&c.options.mapping.name)
        .and_then(scalar)
        .filter(|n| latchkey_core::validate::display_name("name", n).is_ok());
    let groups = c
        .options
        .mapping
        .groups
        .as_deref()
        .and_then(get)
        .map(|g| strings(g, MAX_GROUPS))
        .unwrap_or_default();
    let amr = get("amr").map(|a| strings(a, 16)).unwrap_or_default();
    let auth_time = id_claims
        .and_then(|m| m.get("auth_time"))
        .and_then(Value::as_i64)
        .and_then(|s| s.checked_mul(1000));
    let attributes = c
        .options
        .attribute_map
        .iter()
        .filter_map(|(claim, attribute)| get(claim).map(|v| (attribute.clone(), v.clone())))
        .collect();
    Ok(Upstream {
        subject,
        email,
        email_verified,
        name,
        groups,
        amr,
        auth_time,
        attributes,
    })
}
