//! `/admin/t/{tenant}/attributes…` and `/users/{id}/attributes…`: the tenant's user-attribute
//! schema (defined, read with its `ETag`, changed by a merge patch under `If-Match`, removed)
//! and users' values, as the CLI's `attribute …` commands do them. Every value is checked
//! against the schema by the store, whoever sets it. Writes are audited by the store.

use super::{
    audit, audited_read, authenticate, body, etag_response, if_match, json_ok, merge_object, missing,
};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::{AppError, Kind};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{AttributeDef, AttributeKind, EditableBy, Outcome, TenantId, UnixMillis, UserId};
use latchkey_store::{AttributeRepo, AttributeUpdate, Db, StoreError, UserRepo};
use serde_json::json;

/// `GET …/attributes`: the tenant's schema, by name (a tenant has at most a few dozen).
pub(super) async fn list(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        if !req.query_string().is_empty() {
            return Err(AppError::new(
                Kind::BadRequest,
                "Bad query: no parameters are taken",
            ));
        }
        let tid = caller.tenant.id.clone();
        let defs = state.store(move |db| db.attribute_defs(&tid)).await?;
        let details = json!({"attributes": defs.len()});
        audit(
            &state,
            &caller,
            Outcome::Success,
            "attribute.list",
            "attributes",
            details,
        )
        .await?;
        Ok(json_ok(&defs))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DefineBody {
    name: String,
    #[serde(alias = "type")]
    kind: AttributeKind,
    label: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    unique: bool,
    editable_by: Option<EditableBy>,
}

impl Default for DefineBody {
    fn default() -> Self {
        Self {
            name: String::new(),
            kind: AttributeKind::String,
            label: None,
            required: false,
            unique: false,
            editable_by: None,
        }
    }
}

/// `POST …/attributes` `{"name", "kind", "label", "required", "unique", "editable_by"}`: 201
/// with the definition (as `latchkey attribute define`); 409 for a taken name;
/// `Idempotency-Key` works.
pub(super) async fn define(
    req: HttpRequest,
    slug: web::Path<String>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let caller = authenticate(&req, &state, &slug).await?;
        let b: DefineBody = body(&bytes, false)?;
        let run = async {
            let def = AttributeDef {
                tenant_id: caller.tenant.id.clone(),
                name: b.name,
                label: b.label,
                kind: b.kind,
                required: b.required,
                unique: b.unique,
                editable_by: b.editable_by.unwrap_or(EditableBy::Admin),
                created_at: 0,
                updated_at: 0,
            };
            let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
            let def = state
                .store(move |db| db.define_attribute(&tid, &actor, &def))
                .await?;
            Ok((StatusCode::CREATED, json!(def)))
        };
        super::idempotency::once(&state, &caller, (&req, &bytes), run).await
    }
    .await
    .map_err(AppError::problem)
}

/// `GET …/attributes/{name}`: one definition with its `ETag`.
pub(super) async fn get(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (slug, name) = path.into_inner();
    let target = format!("attribute:{name}");
    let fetch = move |db: &Db, t: TenantId| Ok(db.attribute_defs(&t)?.into_iter().find(|d| d.name == name));
    let version: fn(&AttributeDef) -> UnixMillis = |d| d.updated_at;
    let what = ("attribute.read", target, "attribute");
    audited_read(&req, &state, &slug, what, fetch, Some(version)).await
}

/// What a merge patch of a definition may change: `label` (`null` clears it), and the rest,
/// which always have a value (`null` is refused).
#[allow(clippy::option_option)] // absent, `null` or a value: a merge patch's three cases
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AttributePatch {
    #[serde(default, deserialize_with = "super::present")]
    label: Option<Option<String>>,
    #[serde(default, deserialize_with = "super::present")]
    #[schemars(with = "bool")]
    required: Option<bool>,
    #[serde(default, deserialize_with = "super::present")]
    #[schemars(with = "bool")]
    unique: Option<bool>,
    #[serde(default, deserialize_with = "super::present")]
    #[schemars(with = "EditableBy")]
    editable_by: Option<EditableBy>,
}

/// `PATCH …/attributes/{name}`: a merge patch of `label` (`null` clears it), `required`,
/// `unique` and `editable_by`, under `If-Match` (412 when the definition changed since). The
/// name and type are fixed (remove and define again). Answers the definition and its `ETag`.
pub(super) async fn update(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let asked: AttributePatch = merge_object(&req, &bytes)?;
        let u = AttributeUpdate {
            if_version: if_match(&req)?,
            label: asked.label,
            required: asked.required,
            unique: asked.unique,
            editable_by: asked.editable_by,
        };
        let (tid, actor) = (caller.tenant.id.clone(), caller.actor());
        let def = state
            .store(move |db| db.update_attribute(&tid, &actor, &name, &u))
            .await
            .map_err(missing("attribute"))?;
        Ok(etag_response(&def, def.updated_at))
    }
    .await
    .map_err(AppError::problem)
}

#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct AttributeDeleted {
    deleted: &'static str,
    name: String,
}

/// `DELETE …/attributes/{name}`: the definition and every user's value of it; with `If-Match`,
/// 412 when it changed since.
pub(super) async fn remove(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let version = if_match(&req)?;
        let (tid, actor, n) = (caller.tenant.id.clone(), caller.actor(), name.clone());
        state
            .store(move |db| db.remove_attribute(&tid, &actor, &n, version))
            .await
            .map_err(missing("attribute"))?;
        Ok(json_ok(&AttributeDeleted {
            deleted: "attribute",
            name,
        }))
    }
    .await
    .map_err(AppError::problem)
}

/// A user's attribute values by name.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct UserAttributes {
    user_id: UserId,
    attributes: latchkey_store::AttributeValues,
}

/// An attribute's value: any JSON but `null` (which `DELETE` means).
pub(super) struct AttributeValue;

impl schemars::JsonSchema for AttributeValue {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AttributeValue".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"description": "The value, as the attribute's kind has it.", "not": {"type": "null"}})
    }
}

/// `GET …/users/{id}/attributes`: the user's values by name.
pub(super) async fn values(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let (slug, id) = path.into_inner();
    let target = format!("user:{id}");
    audited_read(
        &req,
        &state,
        &slug,
        ("attribute.read_values", target, "user"),
        move |db, t| {
            let uid = UserId(id);
            if db.user(&t, &uid)?.is_none() {
                return Ok(None);
            }
            let attributes = db.user_attributes(&t, &uid)?;
            Ok(Some(UserAttributes {
                user_id: uid,
                attributes,
            }))
        },
        None,
    )
    .await
}

/// `PUT …/users/{id}/attributes/{name}` (body: the value as JSON) sets one value, checked
/// against the schema exactly as `latchkey attribute set` (400 for a value the schema refuses);
/// `DELETE` clears it (400 for a required one). Answers the user's values.
pub(super) async fn set_value(
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    state: web::Data<AppState>,
    bytes: web::Bytes,
) -> Result<HttpResponse, AppError> {
    async {
        let (slug, id, name) = path.into_inner();
        let caller = authenticate(&req, &state, &slug).await?;
        let value = if *req.method() == actix_web::http::Method::PUT {
            let v = super::value(&bytes)?;
            if v.is_null() {
                return Err(AppError::new(
                    Kind::BadRequest,
                    "null is no value: DELETE clears one",
                ));
            }
            Some(v)
        } else {
            None
        };
        let (tid, actor, uid) = (caller.tenant.id.clone(), caller.actor(), UserId(id));
        let changes = vec![(name, value)];
        let (uid, values) = state
            .store(move |db| {
                let values = db.set_user_attributes(&tid, &actor, &uid, &changes, EditableBy::Admin)?;
                Ok::<_, StoreError>((uid, values))
            })
            .await
            .map_err(missing("user"))?;
        Ok(json_ok(&UserAttributes {
            user_id: uid,
            attributes: values,
        }))
    }
    .await
    .map_err(AppError::problem)
}
