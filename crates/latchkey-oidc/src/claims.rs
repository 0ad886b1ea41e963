//! Authorization claims: what the `roles` and `groups` scopes and a client's mappers
//! (`latchkey_core::claims`) put into one token. Plain functions over the user's facts, so the
//! same release serves the ID token, the JWT access token, userinfo and introspection.

use crate::scope;
use latchkey_core::claims::{GroupFilter, GroupsFormat, RoleFilter, RolesFormat};
use latchkey_core::subject::PROTOCOL_CLAIMS;
use latchkey_core::{ClaimSource, ClaimsConfig, EffectiveAccess, TokenTarget};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The scopes that release authorization data without any mapping.
pub const ROLES: &str = "roles";
pub const GROUPS: &str = "groups";

/// What is known about the user when a token is minted: their effective roles and groups and
/// their attribute values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimFacts {
    pub access: EffectiveAccess,
    pub attributes: BTreeMap<String, Value>,
}

/// Whether a user token with `scope` carries anything that needs the user's facts, so a token
/// that doesn't costs no query.
pub fn needs_facts(cfg: &ClaimsConfig, scope: &str) -> bool {
    (scope::contains(scope, ROLES) && !cfg.roles.tokens.is_empty())
        || (scope::contains(scope, GROUPS) && !cfg.groups.tokens.is_empty())
        || cfg
            .mappers
            .iter()
            .any(|m| !matches!(m.source, ClaimSource::Value(_)) && released(m.scope.as_deref(), scope))
}

fn released(mapper_scope: Option<&str>, scope: &str) -> bool {
    mapper_scope.is_none_or(|s| scope::contains(scope, s))
}

/// The authorization claims of one token for `client_id` with the granted `scope`. `facts` is
/// `None` for a client acting for itself: then only static values are released.
pub fn release(
    cfg: &ClaimsConfig,
    client_id: &str,
    scope: &str,
    facts: Option<&ClaimFacts>,
    target: TokenTarget,
) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(f) = facts {
        if scope::contains(scope, ROLES) && cfg.roles.tokens.contains(&target) {
            roles_claims(&mut m, cfg, client_id, &f.access);
        }
        if scope::contains(scope, GROUPS) && cfg.groups.tokens.contains(&target) {
            m.insert(
                GROUPS.into(),
                group_list(
                    &f.access,
                    &GroupFilter {
                        format: cfg.groups.format,
                        under: None,
                    },
                ),
            );
        }
    }
    for mapper in &cfg.mappers {
        if !mapper.tokens.contains(&target) || !released(mapper.scope.as_deref(), scope) {
            continue;
        }
        let value = match (&mapper.source, facts) {
            (ClaimSource::Value(v), _) => Some(v.clone()),
            (ClaimSource::Attribute(a), Some(f)) => f.attributes.get(a).cloned(),
            (ClaimSource::Roles(r), Some(f)) => Some(Value::from(role_list(&f.access, client_id, r))),
            (ClaimSource::Groups(g), Some(f)) => Some(group_list(&f.access, g)),
            _ => None,
        };
        if let Some(v) = value {
            m.insert(mapper.claim.clone(), v);
        }
    }
    m
}

/// A client's claim allow-list (`ClientSettings::allowed_claims`) over one token or answer:
/// every claim it does not name goes, whatever the scopes released, except the protocol claims
/// (`latchkey_core::subject::PROTOCOL_CLAIMS`). No list: nothing is taken away.
pub fn minimise(m: &mut Map<String, Value>, allowed: Option<&[String]>) {
    if let Some(list) = allowed {
        m.retain(|k, _| PROTOCOL_CLAIMS.contains(&k.as_str()) || list.iter().any(|a| a == k));
    }
}

/// The `roles` scope: a flat list, or Keycloak's `realm_access` / `resource_access`.
fn roles_claims(m: &mut Map<String, Value>, cfg: &ClaimsConfig, client_id: &str, a: &EffectiveAccess) {
    let own: &[String] = a.client_roles.get(client_id).map_or(&[], Vec::as_slice);
    let tenant: &[String] = if cfg.roles.own_only { &[] } else { &a.roles };
    match cfg.roles.format {
        RolesFormat::Flat => {
            let mut all: Vec<&String> = tenant.iter().chain(own).collect();
            all.sort();
            all.dedup();
            m.insert(ROLES.into(), json!(all));
        }
        RolesFormat::Keycloak => {
            if !cfg.roles.own_only {
                m.insert("realm_access".into(), json!({ "roles": tenant }));
            }
            m.insert("resource_access".into(), json!({ client_id: { "roles": own } }));
        }
    }
}

/// A `roles` mapper: the filtered names, sorted, once each.
fn role_list(a: &EffectiveAccess, client_id: &str, f: &RoleFilter) -> Vec<String> {
    let client = f.client_id.as_deref().unwrap_or(client_id);
    let mut names: Vec<String> = Vec::new();
    let mut take = |list: &[String]| {
        for n in list {
            let kept = match &f.prefix {
                Some(p) => n
                    .strip_prefix(p.as_str())
                    .map(|rest| if f.strip_prefix { rest } else { n.as_str() }),
                None => Some(n.as_str()),
            };
            if let Some(k) = kept.filter(|k| !k.is_empty()) {
                names.push(k.to_owned());
            }
        }
    };
    if f.tenant {
        take(&a.roles);
    }
    if f.client
        && let Some(list) = a.client_roles.get(client)
    {
        take(list);
    }
    names.sort();
    names.dedup();
    names
}

/// Group names or paths, optionally only at or below one path.
fn group_list(a: &EffectiveAccess, f: &GroupFilter) -> Value {
    let under = f.under.as_deref().map(|u| u.trim_end_matches('/'));
    let mut out: Vec<&str> = a
        .groups
        .iter()
        .filter(|g| {
            under.is_none_or(|u| g.path == u || g.path.strip_prefix(u).is_some_and(|r| r.starts_with('/')))
        })
        .map(|g| match f.format {
            GroupsFormat::Names => g.name.as_str(),
            GroupsFormat::Paths => g.path.as_str(),
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    json!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::claims::{ClaimMapper, RolesRelease};
    use latchkey_core::{ClientId, EffectiveGroup};

    fn facts() -> ClaimFacts {
        let mut client_roles = BTreeMap::new();
        client_roles.insert(
            ClientId::from("reporting"),
            vec!["reports:read".to_owned(), "reports:write".to_owned()],
        );
        client_roles.insert(ClientId::from("billing"), vec!["pay".to_owned()]);
        ClaimFacts {
            access: EffectiveAccess {
                roles: vec!["employee".into(), "reports:admin".into()],
                client_roles,
                groups: vec![
                    EffectiveGroup {
                        name: "staff".into(),
                        path: "/staff".into(),
                    },
                    EffectiveGroup {
                        name: "finance".into(),
                        path: "/staff/finance".into(),
                    },
                    EffectiveGroup {
                        name: "emea".into(),
                        path: "/regions/emea".into(),
                    },
                ],
            },
            attributes: BTreeMap::from([("org".to_owned(), json!("acme")), ("level".to_owned(), json!(3))]),
        }
    }

    fn cfg() -> ClaimsConfig {
        ClaimsConfig::default()
    }

    #[test]
    fn the_roles_and_groups_scopes_work_without_mapping() {
        let f = facts();
        let c = release(
            &cfg(),
            "reporting",
            "openid roles groups",
            Some(&f),
            TokenTarget::IdToken,
        );
        assert_eq!(
            c["roles"],
            json!(["employee", "reports:admin", "reports:read", "reports:write"]),
            "tenant roles and this client's, never another client's"
        );
        assert_eq!(c["groups"], json!(["emea", "finance", "staff"]));
        let none = release(
            &cfg(),
            "reporting",
            "openid profile",
            Some(&f),
            TokenTarget::IdToken,
        );
        assert!(none.is_empty(), "nothing without the scopes: {none:?}");
        assert!(!needs_facts(&cfg(), "openid profile"));
        assert!(needs_facts(&cfg(), "openid roles"));
    }

    #[test]
    fn the_allow_list_caps_every_claim_but_the_protocol_ones() {
        let f = facts();
        let mut m = release(
            &cfg(),
            "reporting",
            "roles groups",
            Some(&f),
            TokenTarget::IdToken,
        );
        for (k, v) in [
            ("sub", json!("u1")),
            ("nonce", json!("n")),
            ("email", json!("a@example.com")),
            ("name", json!("Alice")),
        ] {
            m.insert(k.into(), v);
        }
        let unchanged = m.clone();
        minimise(&mut m, None);
        assert_eq!(m, unchanged, "no list, no cap");
        minimise(&mut m, Some(&["email".to_owned(), "groups".to_owned()]));
        let mut kept: Vec<&str> = m.keys().map(String::as_str).collect();
        kept.sort_unstable();
        assert_eq!(kept, ["email", "groups", "nonce", "sub"]);
        minimise(&mut m, Some(&[]));
        assert!(
            m.len() == 2 && m.contains_key("sub") && m.contains_key("nonce"),
            "an empty list: no user claim"
        );
    }

    #[test]
    fn own_only_and_keycloak_shape() {
        let f = facts();
        let mut c = cfg();
        c.roles.own_only = true;
        let own = release(&c, "billing", "roles", Some(&f), TokenTarget::AccessToken);
        assert_eq!(own["roles"], json!(["pay"]));
        c.roles.format = RolesFormat::Keycloak;
        let kc = release(&c, "billing", "roles", Some(&f), TokenTarget::AccessToken);
        assert_eq!(kc["resource_access"], json!({"billing": {"roles": ["pay"]}}));
        assert!(kc.get("realm_access").is_none());
        c.roles.own_only = false;
        let kc = release(&c, "billing", "roles", Some(&f), TokenTarget::AccessToken);
        assert_eq!(
            kc["realm_access"],
            json!({"roles": ["employee", "reports:admin"]})
        );
    }

    #[test]
    fn targets_limit_where_claims_go() {
        let f = facts();
        let mut c = cfg();
        c.groups = latchkey_core::claims::GroupsRelease {
            format: GroupsFormat::Paths,
            tokens: vec![TokenTarget::AccessToken],
        };
        c.roles = RolesRelease {
            tokens: vec![TokenTarget::Userinfo],
            ..RolesRelease::default()
        };
        let id = release(&c, "reporting", "roles groups", Some(&f), TokenTarget::IdToken);
        assert!(id.is_empty());
        let at = release(
            &c,
            "reporting",
            "roles groups",
            Some(&f),
            TokenTarget::AccessToken,
        );
        assert_eq!(at["groups"], json!(["/regions/emea", "/staff", "/staff/finance"]));
        assert!(at.get("roles").is_none());
    }

    #[test]
    fn mappers_take_attributes_values_and_filtered_lists() {
        let f = facts();
        let mapper = |claim: &str, scope: Option<&str>, source: ClaimSource| ClaimMapper {
            claim: claim.into(),
            source,
            scope: scope.map(str::to_owned),
            tokens: TokenTarget::ALL.to_vec(),
        };
        let c = ClaimsConfig {
            mappers: vec![
                mapper("org", None, ClaimSource::Attribute("org".into())),
                mapper("region", None, ClaimSource::Attribute("region".into())),
                mapper("tier", None, ClaimSource::Value(json!("gold"))),
                mapper(
                    "reports",
                    Some("reports"),
                    ClaimSource::Roles(RoleFilter {
                        tenant: true,
                        client: true,
                        prefix: Some("reports:".into()),
                        strip_prefix: true,
                        client_id: None,
                    }),
                ),
                mapper(
                    "teams",
                    None,
                    ClaimSource::Groups(GroupFilter {
                        format: GroupsFormat::Names,
                        under: Some("/staff".into()),
                    }),
                ),
            ],
            ..cfg()
        };
        let without = release(&c, "reporting", "openid", Some(&f), TokenTarget::IdToken);
        assert_eq!(without["org"], "acme");
        assert!(without.get("region").is_none(), "no value, no claim");
        assert_eq!(without["tier"], "gold");
        assert!(
            without.get("reports").is_none(),
            "the reports scope was not granted"
        );
        assert_eq!(without["teams"], json!(["finance", "staff"]));
        let with = release(&c, "reporting", "openid reports", Some(&f), TokenTarget::IdToken);
        assert_eq!(with["reports"], json!(["admin", "read", "write"]));
        let machine = release(&c, "reporting", "reports", None, TokenTarget::AccessToken);
        assert_eq!(
            machine.keys().collect::<Vec<_>>(),
            ["tier"],
            "a client acting for itself gets static values only"
        );
        assert!(needs_facts(&c, "openid"));
    }
}
