//! Per client, what its tokens say about what a user may do: the `roles` and `groups` scopes'
//! shape, and declarative mappers (an attribute, a static value, a filtered role or group list
//! into a claim, released by scope into chosen tokens). No scripting: every mapper is data, checked
//! here when an operator saves it. `latchkey-oidc::claims` applies it.

use crate::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most mappers a client may have.
pub const MAX_MAPPERS: usize = 32;
/// The largest static value, as JSON.
pub const MAX_STATIC_BYTES: usize = 1024;

/// Claims a mapper may not write: registered JWT and OIDC claims, which relying parties trust
/// for identity and session checks, and the built-in scopes' own.
pub const RESERVED_CLAIMS: [&str; 44] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "s_hash",
    "scope",
    "client_id",
    "cnf",
    "act",
    "may_act",
    "typ",
    "token_type",
    "name",
    "given_name",
    "family_name",
    "middle_name",
    "nickname",
    "preferred_username",
    "profile",
    "picture",
    "website",
    "gender",
    "birthdate",
    "zoneinfo",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "address",
    "phone_number",
    "phone_number_verified",
    "roles",
    "groups",
];

crate::model::wire_enum!(
    /// The three places a claim can go.
    TokenTarget { IdToken = "id_token", AccessToken = "access_token", Userinfo = "userinfo" }
);

crate::model::wire_enum!(
    /// How the `roles` scope writes roles: one flat `roles` list (tenant roles and this client's,
    /// once each), or Keycloak's `realm_access.roles` and `resource_access.{client}.roles`.
    RolesFormat { Flat = "flat", Keycloak = "keycloak" }
);

crate::model::wire_enum!(
    /// How groups are named in tokens: `finance`, or its path `/staff/finance`.
    GroupsFormat { Names = "names", Paths = "paths" }
);

fn all_targets() -> Vec<TokenTarget> {
    TokenTarget::ALL.to_vec()
}

fn is_all_targets(t: &[TokenTarget]) -> bool {
    TokenTarget::ALL.iter().all(|a| t.contains(a))
}

/// The `roles` scope of one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RolesRelease {
    pub format: RolesFormat,
    /// Only this client's roles, no tenant roles: keeps a busy tenant's tokens small.
    pub own_only: bool,
    pub tokens: Vec<TokenTarget>,
}

impl Default for RolesRelease {
    fn default() -> Self {
        Self {
            format: RolesFormat::Flat,
            own_only: false,
            tokens: all_targets(),
        }
    }
}

/// The `groups` scope of one client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct GroupsRelease {
    pub format: GroupsFormat,
    pub tokens: Vec<TokenTarget>,
}

impl Default for GroupsRelease {
    fn default() -> Self {
        Self {
            format: GroupsFormat::Names,
            tokens: all_targets(),
        }
    }
}

/// Which roles a `roles` mapper takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct RoleFilter {
    /// Tenant roles.
    pub tenant: bool,
    /// The roles of this client (`client_id`, or the client the token is for when unset).
    pub client: bool,
    pub client_id: Option<String>,
    /// Only roles whose name starts with this (`reports:`).
    pub prefix: Option<String>,
    /// Write the names without the prefix (`read` for `reports:read`).
    pub strip_prefix: bool,
}

/// Which groups a `groups` mapper takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct GroupFilter {
    pub format: GroupsFormat,
    /// Only groups at or below this path (`/staff`).
    pub under: Option<String>,
}

impl Default for GroupFilter {
    fn default() -> Self {
        Self {
            format: GroupsFormat::Names,
            under: None,
        }
    }
}

/// Where a mapper's value comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClaimSource {
    /// A user attribute of the tenant's schema; no claim when the user has no value.
    Attribute(String),
    /// The same value for everyone (also in client-credentials tokens).
    Value(Value),
    /// A list of the user's effective role names.
    Roles(RoleFilter),
    /// A list of the user's groups.
    Groups(GroupFilter),
}

/// One claim of a client's tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClaimMapper {
    pub claim: String,
    pub source: ClaimSource,
    /// Released only when this scope was granted (a custom scope such as `reports`, which the
    /// client must be allowed); always when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default = "all_targets", skip_serializing_if = "is_all_targets")]
    pub tokens: Vec<TokenTarget>,
}

/// A client's claim configuration. The default releases the user's roles and groups under the
/// `roles` and `groups` scopes into every token, with no mapper.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(default, deny_unknown_fields)]
pub struct ClaimsConfig {
    pub roles: RolesRelease,
    pub groups: GroupsRelease,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mappers: Vec<ClaimMapper>,
}

fn invalid(message: impl Into<String>) -> ValidationError {
    ValidationError {
        field: "claims",
        message: message.into(),
    }
}

impl ClaimsConfig {
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Checks what an operator saves: claim names plain and not reserved, each claim once,
    /// scopes valid, static values small, limits kept.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.mappers.len() > MAX_MAPPERS {
            return Err(invalid(format!("at most {MAX_MAPPERS} mappers")));
        }
        let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
        for m in &self.mappers {
            claim_name(&m.claim)?;
            if seen.contains(&(m.claim.as_str(), m.scope.as_deref())) {
                return Err(invalid(format!(
                    "claim {:?} is mapped twice for the same scope",
                    m.claim
                )));
            }
            seen.push((m.claim.as_str(), m.scope.as_deref()));
            if let Some(s) = &m.scope {
                crate::validate::scope(s)?;
            }
            if m.tokens.is_empty() {
                return Err(invalid(format!("claim {:?} goes into no token", m.claim)));
            }
            match &m.source {
                ClaimSource::Attribute(a) => {
                    crate::attributes::attribute_name(a)?;
                }
                ClaimSource::Value(v) => {
                    if v.is_null() || v.to_string().len() > MAX_STATIC_BYTES {
                        return Err(invalid(format!(
                            "claim {:?}: a static value must be non-null JSON of at most {MAX_STATIC_BYTES} bytes",
                            m.claim
                        )));
                    }
                }
                ClaimSource::Roles(f) => {
                    if !f.tenant && !f.client {
                        return Err(invalid(format!(
                            "claim {:?}: take tenant roles, client roles or both",
                            m.claim
                        )));
                    }
                    if f.prefix.as_deref().is_some_and(|p| p.is_empty() || p.len() > 128) {
                        return Err(invalid(format!(
                            "claim {:?}: prefix must be 1-128 bytes",
                            m.claim
                        )));
                    }
                }
                ClaimSource::Groups(f) => {
                    if f.under
                        .as_deref()
                        .is_some_and(|u| !u.starts_with('/') || u.len() > 1024)
                    {
                        return Err(invalid(format!(
                            "claim {:?}: `under` is a group path such as /staff",
                            m.claim
                        )));
                    }
                }
            }
        }
        Ok(())
    }
}

/// A claim name a mapper may write: 1-256 characters of letters, digits and `_ . : / -` (so
/// namespaced URLs such as `https://acme.example/org` work), not a reserved claim.
pub fn claim_name(s: &str) -> Result<(), ValidationError> {
    let ok = (1..=256).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'));
    if !ok {
        return Err(invalid(format!(
            "{s:?} is not a valid claim name: use 1-256 letters, digits and _ . : / -"
        )));
    }
    if RESERVED_CLAIMS.contains(&s) || s == "realm_access" || s == "resource_access" {
        return Err(invalid(format!(
            "{s:?} is a registered or built-in claim; a mapper may not write it"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapper(claim: &str, source: ClaimSource) -> ClaimMapper {
        ClaimMapper {
            claim: claim.into(),
            source,
            scope: None,
            tokens: all_targets(),
        }
    }

    #[test]
    fn the_default_is_left_out_of_stored_settings() {
        let c = ClaimsConfig::default();
        assert!(c.is_default());
        assert_eq!(serde_json::to_value(&c.roles).unwrap()["format"], "flat");
        let read: ClaimsConfig = serde_json::from_value(json!({"roles": {"own_only": true}})).unwrap();
        assert!(read.roles.own_only);
        assert_eq!(read.roles.tokens.len(), 3);
        assert!(serde_json::from_value::<ClaimsConfig>(json!({"rolez": {}})).is_err());
    }

    #[test]
    fn mappers_read_as_documented() {
        let m: ClaimMapper = serde_json::from_value(json!({
            "claim": "reports",
            "scope": "reports",
            "source": {"roles": {"client": true, "prefix": "reports:", "strip_prefix": true}},
            "tokens": ["access_token"]
        }))
        .unwrap();
        assert_eq!(m.tokens, [TokenTarget::AccessToken]);
        let ClaimSource::Roles(f) = &m.source else {
            panic!("roles")
        };
        assert!(f.client && !f.tenant && f.strip_prefix);
        let a: ClaimMapper =
            serde_json::from_value(json!({"claim": "org", "source": {"attribute": "org"}})).unwrap();
        assert_eq!(a.source, ClaimSource::Attribute("org".into()));
        assert!(!serde_json::to_string(&a).unwrap().contains("tokens"));
        assert!(
            serde_json::from_value::<ClaimMapper>(json!({"claim": "x", "source": {"script": "1"}})).is_err()
        );
    }

    #[test]
    fn reserved_and_malformed_claims_are_refused() {
        for bad in [
            "sub",
            "email_verified",
            "roles",
            "realm_access",
            "acr",
            "",
            "a b",
            "x\"y",
        ] {
            let c = ClaimsConfig {
                mappers: vec![mapper(bad, ClaimSource::Value(json!("v")))],
                ..ClaimsConfig::default()
            };
            assert!(c.validate().is_err(), "{bad:?}");
        }
        let ok = ClaimsConfig {
            mappers: vec![mapper(
                "https://acme.example/tier",
                ClaimSource::Value(json!("gold")),
            )],
            ..ClaimsConfig::default()
        };
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn limits_hold() {
        let big = ClaimsConfig {
            mappers: vec![mapper("big", ClaimSource::Value(json!("x".repeat(1100))))],
            ..ClaimsConfig::default()
        };
        assert!(big.validate().is_err());
        let many = ClaimsConfig {
            mappers: (0..33)
                .map(|i| mapper(&format!("c{i}"), ClaimSource::Value(json!(i))))
                .collect(),
            ..ClaimsConfig::default()
        };
        assert!(many.validate().is_err());
        let twice = ClaimsConfig {
            mappers: vec![
                mapper("org", ClaimSource::Attribute("org".into())),
                mapper("org", ClaimSource::Value(json!("x"))),
            ],
            ..ClaimsConfig::default()
        };
        assert!(twice.validate().is_err());
        let no_roles = ClaimsConfig {
            mappers: vec![mapper("r", ClaimSource::Roles(RoleFilter::default()))],
            ..ClaimsConfig::default()
        };
        assert!(no_roles.validate().is_err());
    }
}
