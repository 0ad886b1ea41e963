//! Changing a client by a JSON merge patch (RFC 7396) over its JSON form (what the admin API
//! shows): one path for the API's `PATCH` and the CLI's `client update`, so both accept and
//! refuse the same things. The store then checks the result like a registration.

use crate::{Client, ValidationError};
use serde_json::{Map, Value};

/// Members a patch may not change (it may repeat their current value, as a client that sends
/// back what it read does).
pub const FIXED: &[&str] = &[
    "client_id",
    "tenant_id",
    "client_type",
    "created_at",
    "updated_at",
    "previous_secret",
];

/// RFC 7396 §2: an object merges member by member, `null` removes a member, anything else
/// replaces the target.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(members) = patch else {
        target.clone_from(patch);
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in members {
            if v.is_null() {
                t.remove(k);
            } else {
                merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn invalid(message: String) -> ValidationError {
    ValidationError {
        field: "patch",
        message,
    }
}

/// `c` with `patch` applied. The patch is a JSON object naming only members of the client's
/// JSON form; the fixed ones (id, tenant, type, times, the old secret's overlap) can't change,
/// and the secret is never part of it (`rotate-secret` changes that).
pub fn patched_client(c: &Client, patch: &Value) -> Result<Client, ValidationError> {
    let Value::Object(members) = patch else {
        return Err(invalid("a merge patch is a JSON object".into()));
    };
    let mut doc = serde_json::to_value(c).map_err(|e| invalid(e.to_string()))?;
    for (k, v) in members {
        if FIXED.contains(&k.as_str()) {
            if doc.get(k) != Some(v) {
                return Err(invalid(format!("{k} can't be changed")));
            }
        } else if doc.get(k).is_none() {
            return Err(invalid(format!("unknown field {k:?}")));
        }
    }
    merge_patch(&mut doc, patch);
    let mut out: Client = serde_json::from_value(doc).map_err(|e| invalid(e.to_string()))?;
    out.secret_hash.clone_from(&c.secret_hash);
    out.previous_secret.clone_from(&c.previous_secret);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client() -> Client {
        serde_json::from_value(json!({
            "client_id": "c1", "tenant_id": "t", "name": "Portal", "client_type": "confidential",
            "auth_method": "client_secret_basic", "redirect_uris": ["https://a.test/cb"],
            "post_logout_redirect_uris": [], "grant_types": ["authorization_code"],
            "scopes": ["openid"], "access_token_format": "jwt", "require_pkce": true,
            "introspect_others": false, "first_party": false, "jwks_uri": null, "jwks": null,
            "settings": {"access_token_secs": 300}, "created_at": 1, "updated_at": 2
        }))
        .unwrap()
    }

    #[test]
    fn rfc_7396_appendix_a_examples() {
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (json!({"e": null}), json!({"a": 1}), json!({"e": null, "a": 1})),
            (json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (mut target, patch, want) in cases {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "{patch}");
        }
    }

    #[test]
    fn a_patch_changes_what_it_names_and_keeps_the_secret() {
        let mut c = client();
        c.secret_hash = Some("HASH".into());
        let p = json!({"redirect_uris": ["https://b.test/cb"], "settings": {"id_token_secs": 60}});
        let out = patched_client(&c, &p).unwrap();
        assert_eq!(out.redirect_uris, ["https://b.test/cb"]);
        assert_eq!(out.settings.access_token_secs, Some(300), "merged, not replaced");
        assert_eq!(out.settings.id_token_secs, Some(60));
        assert_eq!(out.secret_hash.as_deref(), Some("HASH"));
        assert_eq!(out.name, "Portal");
        // Sending back the fixed members unchanged is fine.
        assert!(patched_client(&c, &json!({"client_id": "c1", "created_at": 1})).is_ok());
    }

    #[test]
    fn fixed_unknown_and_malformed_members_are_refused() {
        let c = client();
        for (p, says) in [
            (json!({"client_id": "c2"}), "client_id can't be changed"),
            (json!({"client_type": "public"}), "client_type can't be changed"),
            (json!({"secret_hash": "x"}), "unknown field"),
            (json!({"settings": {"nope": 1}}), "unknown field"),
            (json!({"redirect_uris": "https://b.test/cb"}), "invalid type"),
            (json!({"redirect_uris": null}), "missing field"),
            (json!(["not", "an", "object"]), "JSON object"),
        ] {
            let e = patched_client(&c, &p).unwrap_err();
            assert!(e.message.contains(says), "{p}: {}", e.message);
        }
    }
}
