//! User attributes: a typed, per-tenant schema (`org`, `region`, `employee_id`, …) and the
//! rules a value must meet before it is stored. Portals filter rows by these values, so a value
//! is checked against its declared type here, once, whoever sets it.

use crate::{TenantId, UnixMillis};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The most attributes a tenant may declare.
pub const MAX_ATTRIBUTES: usize = 64;
/// The longest string value, in characters.
pub const MAX_STRING_CHARS: usize = 1024;
/// The most items of a string list, and the longest item.
pub const MAX_LIST_ITEMS: usize = 64;
pub const MAX_ITEM_CHARS: usize = 256;

/// Names an attribute may not take: they are standard claims or Latchkey's own, which an
/// attribute mapped into tokens must not be able to shadow.
const RESERVED: [&str; 12] = [
    "sub",
    "email",
    "email_verified",
    "name",
    "preferred_username",
    "roles",
    "groups",
    "username",
    "id",
    "status",
    "realm_access",
    "resource_access",
];

crate::model::wire_enum!(
    /// The type of an attribute's values.
    AttributeKind {
        String = "string",
        Number = "number",
        Boolean = "boolean",
        StringList = "string-list",
    }
);

crate::model::wire_enum!(
    /// Who may change an attribute's value: only administrators, or the user too (on the
    /// account page).
    EditableBy { Admin = "admin", User = "user" }
);

/// One declared attribute of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AttributeDef {
    pub tenant_id: TenantId,
    pub name: String,
    /// The label people see on the account page; the name when unset.
    pub label: Option<String>,
    pub kind: AttributeKind,
    /// A value must be present: it can't be cleared, and the account form asks for it.
    pub required: bool,
    /// No two users of the tenant hold the same value.
    pub unique: bool,
    pub editable_by: EditableBy,
    pub created_at: UnixMillis,
    /// The version: moves on with every change of the definition.
    #[serde(default)]
    pub updated_at: UnixMillis,
}

/// Why a value was refused, in words for the person or operator who sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct AttributeError {
    pub name: String,
    pub message: String,
}

impl AttributeDef {
    fn refuse(&self, message: impl Into<String>) -> AttributeError {
        AttributeError {
            name: self.name.clone(),
            message: message.into(),
        }
    }

    /// Checks a JSON value against the declared type and limits; strings are trimmed.
    pub fn check(&self, v: &Value) -> Result<Value, AttributeError> {
        match (self.kind, v) {
            (AttributeKind::String, Value::String(s)) => text(s, MAX_STRING_CHARS)
                .map(Value::String)
                .map_err(|m| self.refuse(m)),
            (AttributeKind::Number, Value::Number(n)) if n.as_f64().is_some_and(f64::is_finite) => {
                Ok(v.clone())
            }
            (AttributeKind::Boolean, Value::Bool(_)) => Ok(v.clone()),
            (AttributeKind::StringList, Value::Array(items)) => {
                if items.len() > MAX_LIST_ITEMS {
                    return Err(self.refuse(format!("at most {MAX_LIST_ITEMS} items")));
                }
                let mut out: Vec<Value> = Vec::with_capacity(items.len());
                for i in items {
                    let Value::String(s) = i else {
                        return Err(self.refuse("every item must be a string"));
                    };
                    let s = Value::String(text(s, MAX_ITEM_CHARS).map_err(|m| self.refuse(m))?);
                    if !out.contains(&s) {
                        out.push(s);
                    }
                }
                Ok(Value::Array(out))
            }
            _ => Err(self.refuse(format!("must be a {}", self.kind_words()))),
        }
    }

    /// Reads a value as typed in a form or on a command line: numbers and booleans from their
    /// text, a string list from comma-separated items. An empty text means "no value".
    pub fn parse_text(&self, s: &str) -> Result<Option<Value>, AttributeError> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let v = match self.kind {
            AttributeKind::String => Value::String(s.to_owned()),
            AttributeKind::Number => s
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(|f| {
                    // Integers stay integers in tokens (`42`, not `42.0`).
                    s.parse::<i64>()
                        .map(Value::from)
                        .ok()
                        .or_else(|| serde_json::Number::from_f64(f).map(Value::Number))
                })
                .ok_or_else(|| self.refuse("must be a number"))?,
            AttributeKind::Boolean => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Value::Bool(true),
                "false" | "no" | "off" => Value::Bool(false),
                _ => return Err(self.refuse("must be true or false")),
            },
            AttributeKind::StringList => Value::Array(
                s.split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(|i| Value::String(i.to_owned()))
                    .collect(),
            ),
        };
        self.check(&v).map(Some)
    }

    /// The value as a form field shows it: the inverse of `parse_text`.
    pub fn display(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        }
    }

    /// The text that makes a value unique (`unique` attributes): the canonical JSON.
    pub fn unique_key(&self, v: &Value) -> Option<String> {
        self.unique.then(|| v.to_string())
    }

    fn kind_words(&self) -> &'static str {
        match self.kind {
            AttributeKind::String => "string",
            AttributeKind::Number => "number",
            AttributeKind::Boolean => "boolean (true or false)",
            AttributeKind::StringList => "list of strings",
        }
    }
}

fn text(s: &str, max: usize) -> Result<String, String> {
    let t = s.trim();
    if t.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    Ok(t.to_owned())
}

/// An attribute name: 1-64 characters of `a-z`, `0-9`, `_`, starting with a letter, and not a
/// standard claim. Names become claim names, so they stay plain.
pub fn attribute_name(s: &str) -> Result<String, crate::ValidationError> {
    let ok = (1..=64).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(crate::ValidationError {
            field: "name",
            message: format!(
                "{s:?} is not a valid attribute name: use 1-64 characters of a-z, 0-9 and _, starting with a letter"
            ),
        });
    }
    if RESERVED.contains(&s) {
        return Err(crate::ValidationError {
            field: "name",
            message: format!("{s:?} is a standard claim or a Latchkey name; choose another"),
        });
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn def(kind: AttributeKind) -> AttributeDef {
        AttributeDef {
            tenant_id: "t".into(),
            name: "org".into(),
            label: None,
            kind,
            required: false,
            unique: false,
            editable_by: EditableBy::Admin,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn values_must_match_their_type() {
        assert_eq!(
            def(AttributeKind::String).check(&json!(" acme ")).unwrap(),
            json!("acme")
        );
        assert!(def(AttributeKind::String).check(&json!(3)).is_err());
        assert!(def(AttributeKind::String).check(&json!("a\u{0}b")).is_err());
        assert!(
            def(AttributeKind::String)
                .check(&json!("x".repeat(1025)))
                .is_err()
        );
        assert!(def(AttributeKind::Number).check(&json!("3")).is_err());
        assert_eq!(def(AttributeKind::Number).check(&json!(3.5)).unwrap(), json!(3.5));
        assert!(def(AttributeKind::Boolean).check(&json!("true")).is_err());
        let list = def(AttributeKind::StringList);
        assert_eq!(list.check(&json!(["a", "b", "a"])).unwrap(), json!(["a", "b"]));
        assert!(list.check(&json!(["a", 1])).is_err());
        assert!(list.check(&json!(vec!["a"; 65])).is_err());
    }

    #[test]
    fn text_reads_as_the_type_says() {
        assert_eq!(
            def(AttributeKind::Number).parse_text("42").unwrap(),
            Some(json!(42))
        );
        assert_eq!(
            def(AttributeKind::Number).parse_text("1.5").unwrap(),
            Some(json!(1.5))
        );
        assert!(def(AttributeKind::Number).parse_text("NaN").is_err());
        assert!(def(AttributeKind::Number).parse_text("inf").is_err());
        assert_eq!(
            def(AttributeKind::Boolean).parse_text("Yes").unwrap(),
            Some(json!(true))
        );
        assert!(def(AttributeKind::Boolean).parse_text("maybe").is_err());
        assert_eq!(
            def(AttributeKind::StringList).parse_text("eu, us ,,eu").unwrap(),
            Some(json!(["eu", "us"]))
        );
        assert_eq!(def(AttributeKind::String).parse_text("  ").unwrap(), None);
        assert_eq!(AttributeDef::display(&json!(["eu", "us"])), "eu, us");
    }

    #[test]
    fn names_are_plain_and_not_standard_claims() {
        assert!(attribute_name("employee_id").is_ok());
        for bad in [
            "",
            "Org",
            "1org",
            "org-unit",
            "email",
            "roles",
            "sub",
            &"a".repeat(65),
        ] {
            assert!(attribute_name(bad).is_err(), "{bad}");
        }
    }
}
