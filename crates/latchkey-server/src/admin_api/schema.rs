//! Schemas the route table names that no single Rust type has: a JSON merge patch over an
//! object's JSON form (RFC 7396), for the PATCH routes that merge into what `GET` shows, and a
//! type as read with unknown members refused (where the handler checks them itself).

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde_json::{Map, Value, json};
use std::borrow::Cow;

/// An object changed by a merge patch over its JSON form, with the members a patch may not
/// change (dotted for nested ones) left out of the patch's schema.
pub(super) trait Patchable: JsonSchema {
    const FIXED: &'static [&'static str];
}

/// A JSON merge patch of `T` (RFC 7396): every member optional, a nested object a patch of
/// its own, and `null` (remove: the member's default) allowed for a member `T` may do without.
/// Unknown members are refused (every patch handler checks them).
pub(super) struct MergePatch<T>(std::marker::PhantomData<T>);

impl<T> Default for MergePatch<T> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<T: Patchable> JsonSchema for MergePatch<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}Patch", T::schema_name()).into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let target = g.subschema_for::<T>().to_value();
        Schema::try_from(shape(&target, g.definitions(), T::FIXED, "", true)).unwrap_or_default()
    }
}

/// `T` as read, with no member but its own at any depth.
pub(super) struct Closed<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for Closed<T> {
    fn schema_name() -> Cow<'static, str> {
        format!("{}Closed", T::schema_name()).into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        let target = g.subschema_for::<T>().to_value();
        Schema::try_from(shape(&target, g.definitions(), &[], "", false)).unwrap_or_default()
    }
}

impl Patchable for latchkey_core::Client {
    /// `latchkey_core::patch::FIXED`, and the secret, which is not in the JSON form.
    const FIXED: &'static [&'static str] = &[
        "client_id",
        "tenant_id",
        "client_type",
        "created_at",
        "updated_at",
        "previous_secret",
        "secret_hash",
    ];
}

impl Patchable for latchkey_core::TenantPolicy {
    /// The webhook is set by the CLI (its secret is shown once); `mfa_required` is read only.
    const FIXED: &'static [&'static str] =
        &["mfa_required", "risk.webhook_url", "risk.webhook_secret_sealed"];
}

impl Patchable for latchkey_core::SamlOptions {
    const FIXED: &'static [&'static str] = &[];
}

impl Patchable for latchkey_core::UpstreamOptions {
    const FIXED: &'static [&'static str] = &[];
}

impl Patchable for latchkey_core::UpstreamEndpoints {
    const FIXED: &'static [&'static str] = &[];
}

/// `schema` itself, or the definition it refers to.
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| defs.get(name))
        .unwrap_or(schema)
}

/// An object schema closed to unknown members at every depth and, for a `patch`, with every
/// member optional and `null` allowed where the member has a default (anything but an object
/// is replaced whole by a patch, so its schema stays).
fn shape(schema: &Value, defs: &Map<String, Value>, fixed: &[&str], at: &str, patch: bool) -> Value {
    let target = resolve(schema, defs);
    let Some(members) = target.get("properties").and_then(Value::as_object) else {
        return schema.clone();
    };
    let required: Vec<&Value> = target
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().collect())
        .unwrap_or_default();
    let mut properties = Map::new();
    for (k, v) in members {
        let here = if at.is_empty() {
            k.clone()
        } else {
            format!("{at}.{k}")
        };
        if fixed.contains(&here.as_str()) {
            continue;
        }
        let member = shape(v, defs, fixed, &here, patch);
        let nullable = patch && !required.iter().any(|r| *r == k);
        properties.insert(
            k.clone(),
            if nullable {
                json!({"anyOf": [member, {"type": "null"}]})
            } else {
                member
            },
        );
    }
    let mut out = json!({"type": "object", "properties": properties, "additionalProperties": false});
    if !patch && !required.is_empty() {
        out["required"] = json!(required);
    }
    if let Some(d) = target.get("description") {
        out["description"] = d.clone();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::Patchable;

    #[test]
    fn a_client_patch_leaves_out_what_the_patch_refuses() {
        for k in latchkey_core::patch::FIXED {
            assert!(latchkey_core::Client::FIXED.contains(k), "{k}");
        }
    }
}
