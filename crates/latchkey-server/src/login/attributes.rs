//! The "Your details" part of the account page: the tenant's user attributes, each shown, and
//! editable where the schema lets users edit it. A posted field for an attribute the user may
//! not edit is refused whole (nothing is written): the form never offers one, so it was forged.

use super::account::{View, account_form, render};
use super::{AppError, see_other};
use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::form::FormParams;
use crate::web::tenant::InTenant;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use latchkey_core::{AttributeDef, EditableBy, Tenant, User};
use latchkey_store::{AttributeChange, AttributeRepo, StoreError};

/// Form fields carry attributes as `attr_<name>`.
const PREFIX: &str = "attr_";

/// One attribute as the account page shows it.
pub(super) struct AttributeField {
    pub field: String,
    pub label: String,
    pub value: String,
    pub editable: bool,
    pub required: bool,
    /// What to type, for lists and booleans.
    pub hint: &'static str,
}

/// The tenant's attributes with the user's values, in schema order.
pub(super) async fn fields(
    state: &AppState,
    tenant: &Tenant,
    user: &User,
) -> Result<Vec<AttributeField>, AppError> {
    let (tid, uid) = (tenant.id.clone(), user.id.clone());
    let (defs, values) = state
        .store(move |db| Ok::<_, StoreError>((db.attribute_defs(&tid)?, db.user_attributes(&tid, &uid)?)))
        .await?;
    Ok(defs
        .into_iter()
        .map(|d| AttributeField {
            field: format!("{PREFIX}{}", d.name),
            value: values.get(&d.name).map(AttributeDef::display).unwrap_or_default(),
            label: d.label.clone().unwrap_or_else(|| d.name.clone()),
            editable: d.editable_by == EditableBy::User,
            required: d.required,
            hint: match d.kind {
                latchkey_core::AttributeKind::StringList => "comma-separated",
                latchkey_core::AttributeKind::Boolean => "true or false",
                _ => "",
            },
        })
        .collect())
}

/// The changes a posted form asks for, or why it is refused: 403 for a field the form never
/// offers, 422 for a value of the wrong type.
fn changes(defs: &[AttributeDef], form: &FormParams) -> Result<Vec<AttributeChange>, (StatusCode, String)> {
    let mut out = Vec::new();
    for (key, text) in &form.0 {
        let Some(name) = key.strip_prefix(PREFIX) else {
            continue;
        };
        let def = defs.iter().find(|d| d.name == name);
        match def {
            Some(d) if d.editable_by == EditableBy::User => {
                let value = d
                    .parse_text(text)
                    .map_err(|e| (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()))?;
                out.push((d.name.clone(), value));
            }
            Some(d) => {
                let label = d.label.as_deref().unwrap_or(&d.name);
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("{label} can only be changed by an administrator."),
                ));
            }
            None => {
                return Err((
                    StatusCode::FORBIDDEN,
                    format!("There is no detail called {name:?}."),
                ));
            }
        }
    }
    Ok(out)
}

/// POST `/account/attributes`: saves the user-editable attributes in one audited change.
pub(super) async fn update(
    req: HttpRequest,
    InTenant(tenant): InTenant,
    state: web::Data<AppState>,
    form: FormParams,
) -> Result<HttpResponse, AppError> {
    let (tenant, id, user) = match account_form(&req, tenant, &state, &form).await? {
        Ok(found) => found,
        Err(to_login) => return Ok(to_login),
    };
    let tid = tenant.id.clone();
    let defs = state.store(move |db| db.attribute_defs(&tid)).await?;
    let refused = |status, message: String| (status, message);
    let (status, message) = match changes(&defs, &form) {
        Err((status, m)) => refused(status, m),
        Ok(list) if list.is_empty() => return Ok(see_other(&crate::web::urls::account(&tenant.slug, None))),
        Ok(list) => {
            let (tid, uid, actor) = (tenant.id.clone(), user.id.clone(), format!("user:{}", user.id));
            let saved = state
                .store(move |db| {
                    Ok::<_, AppError>(db.set_user_attributes(&tid, &actor, &uid, &list, EditableBy::User))
                })
                .await?;
            match saved {
                Ok(_) => {
                    return Ok(see_other(&crate::web::urls::account(
                        &tenant.slug,
                        Some("saved=1"),
                    )));
                }
                Err(StoreError::Invalid(e)) => refused(StatusCode::UNPROCESSABLE_ENTITY, e.message),
                Err(StoreError::Conflict(m)) => refused(StatusCode::CONFLICT, m),
                Err(e) => return Err(e.into()),
            }
        }
    };
    tracing::info!(user = %user.id, %status, "account attributes refused: {message}");
    render(&state, &req, &tenant, View::error(&id, &user, status, message)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::AttributeKind;

    fn def(name: &str, editable_by: EditableBy) -> AttributeDef {
        AttributeDef {
            tenant_id: "t".into(),
            name: name.into(),
            label: None,
            kind: AttributeKind::String,
            required: false,
            unique: false,
            editable_by,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn form(pairs: &[(&str, &str)]) -> FormParams {
        FormParams(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn only_user_editable_attributes_pass() {
        let defs = [def("region", EditableBy::User), def("org", EditableBy::Admin)];
        let ok = changes(&defs, &form(&[("csrf", "x"), ("attr_region", "eu")])).unwrap();
        assert_eq!(ok, [("region".to_owned(), Some(serde_json::Value::from("eu")))]);
        let cleared = changes(&defs, &form(&[("attr_region", " ")])).unwrap();
        assert_eq!(cleared, [("region".to_owned(), None)]);
        assert!(changes(&defs, &form(&[("attr_region", "eu"), ("attr_org", "evil")])).is_err());
        assert!(changes(&defs, &form(&[("attr_unknown", "x")])).is_err());
    }
}
