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
            if let Some(info_sub) = userinfo.and_then(|u| u.get("sub")).and_then(scalar)
                && info_sub != sub
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
    let email = get(&c.options.mapping.email)
        .and_then(scalar)
        .and_then(|e| latchkey_core::validate::email(&e).ok());
    let email_verified = email.is_some() && get("email_verified").is_some_and(|v| v == &Value::Bool(true));
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
