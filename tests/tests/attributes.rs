//! The user-attribute contract, run against SQLite and PostgreSQL: typed values, unique and
//! required rules, who may edit, removal, tenant isolation and the audit trail.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use latchkey_core::{AttributeDef, AttributeKind, EditableBy, TenantId, TenantPolicy, UserId};
use latchkey_store::{
    AttributeRepo, AttributeUpdate, AuditRepo, Db, NewTenant, NewUser, StoreError, TenantRepo, UserRepo,
};
use serde_json::{Value, json};

const ACTOR: &str = "test";

fn tenant(db: &Db, slug: &str) -> TenantId {
    let new = NewTenant {
        slug: slug.into(),
        display_name: None,
        policy: TenantPolicy::default(),
    };
    db.create_tenant(ACTOR, &new).unwrap().id
}

fn user(db: &Db, t: &TenantId, name: &str) -> UserId {
    let new = NewUser {
        username: name.into(),
        ..NewUser::default()
    };
    db.create_user(t, ACTOR, &new).unwrap().id
}

fn define(
    db: &Db,
    t: &TenantId,
    name: &str,
    kind: AttributeKind,
    rules: (bool, bool, EditableBy),
) -> latchkey_store::Result<AttributeDef> {
    let def = AttributeDef {
        tenant_id: t.clone(),
        name: name.into(),
        label: None,
        kind,
        required: rules.0,
        unique: rules.1,
        editable_by: rules.2,
        created_at: 0,
        updated_at: 0,
    };
    db.define_attribute(t, ACTOR, &def)
}

fn set(
    db: &Db,
    t: &TenantId,
    u: &UserId,
    name: &str,
    v: Option<Value>,
    by: EditableBy,
) -> latchkey_store::Result<latchkey_store::AttributeValues> {
    db.set_user_attributes(t, ACTOR, u, &[(name.to_owned(), v)], by)
}

const ADMIN: EditableBy = EditableBy::Admin;

fn values_are_typed_and_checked(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    define(db, &t, "org", AttributeKind::String, (false, false, ADMIN)).unwrap();
    define(db, &t, "level", AttributeKind::Number, (false, false, ADMIN)).unwrap();
    define(
        db,
        &t,
        "regions",
        AttributeKind::StringList,
        (false, false, ADMIN),
    )
    .unwrap();
    assert!(matches!(
        define(db, &t, "org", AttributeKind::Boolean, (false, false, ADMIN)),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        define(db, &t, "email", AttributeKind::String, (false, false, ADMIN)),
        Err(StoreError::Invalid(_))
    ));
    let changes = [
        ("org".to_owned(), Some(json!(" acme "))),
        ("level".to_owned(), Some(json!(3))),
        ("regions".to_owned(), Some(json!(["eu", "us"]))),
    ];
    let v = db.set_user_attributes(&t, ACTOR, &u, &changes, ADMIN).unwrap();
    assert_eq!(v["org"], "acme", "trimmed");
    assert_eq!(v["level"], json!(3));
    assert_eq!(v["regions"], json!(["eu", "us"]));
    // A wrong type anywhere in a change refuses all of it.
    let bad = [
        ("org".to_owned(), Some(json!("other"))),
        ("level".to_owned(), Some(json!("high"))),
    ];
    assert!(matches!(
        db.set_user_attributes(&t, ACTOR, &u, &bad, ADMIN),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        db.user_attributes(&t, &u).unwrap()["org"],
        "acme",
        "nothing written"
    );
    assert!(matches!(
        set(db, &t, &u, "nope", Some(json!("x")), ADMIN),
        Err(StoreError::Invalid(_))
    ));
    let v = set(db, &t, &u, "level", None, ADMIN).unwrap();
    assert!(!v.contains_key("level"), "cleared");
}

fn unique_required_and_editable_by_hold(db: &Db) {
    let t = tenant(db, "acme");
    let (a, b) = (user(db, &t, "a"), user(db, &t, "b"));
    define(db, &t, "employee_id", AttributeKind::String, (true, true, ADMIN)).unwrap();
    define(
        db,
        &t,
        "nickname_x",
        AttributeKind::String,
        (false, false, EditableBy::User),
    )
    .unwrap();
    set(db, &t, &a, "employee_id", Some(json!("E-1")), ADMIN).unwrap();
    let taken = set(db, &t, &b, "employee_id", Some(json!("E-1")), ADMIN).unwrap_err();
    assert!(
        matches!(&taken, StoreError::Conflict(m) if m.contains("another user")),
        "{taken}"
    );
    assert!(
        matches!(
            set(db, &t, &a, "employee_id", None, ADMIN),
            Err(StoreError::Invalid(_))
        ),
        "required can't be cleared"
    );
    assert!(
        matches!(
            set(db, &t, &a, "employee_id", Some(json!("E-9")), EditableBy::User),
            Err(StoreError::Invalid(_))
        ),
        "admin-only"
    );
    set(db, &t, &a, "nickname_x", Some(json!("ace")), EditableBy::User).unwrap();
    // Making a duplicated attribute unique is refused; a clean one becomes unique.
    set(db, &t, &b, "nickname_x", Some(json!("ace")), ADMIN).unwrap();
    let up = AttributeUpdate {
        unique: Some(true),
        ..AttributeUpdate::default()
    };
    assert!(matches!(
        db.update_attribute(&t, ACTOR, "nickname_x", &up),
        Err(StoreError::Conflict(_))
    ));
    set(db, &t, &b, "nickname_x", Some(json!("bee")), ADMIN).unwrap();
    assert!(db.update_attribute(&t, ACTOR, "nickname_x", &up).unwrap().unique);
    assert!(matches!(
        set(db, &t, &b, "nickname_x", Some(json!("ace")), ADMIN),
        Err(StoreError::Conflict(_))
    ));
}

fn removal_isolation_and_audit(db: &Db) {
    let (t, other) = (tenant(db, "acme"), tenant(db, "globex"));
    let u = user(db, &t, "carol");
    let stranger = user(db, &other, "mallory");
    define(db, &t, "org", AttributeKind::String, (false, false, ADMIN)).unwrap();
    set(db, &t, &u, "org", Some(json!("secret-org")), ADMIN).unwrap();
    // Another tenant has no such attribute, and can't reach this tenant's user.
    assert!(set(db, &other, &stranger, "org", Some(json!("x")), ADMIN).is_err());
    assert!(matches!(
        set(db, &other, &u, "org", Some(json!("x")), ADMIN),
        Err(StoreError::NotFound { .. })
    ));
    assert!(db.user_attributes(&other, &u).unwrap().is_empty());
    db.remove_attribute(&t, ACTOR, "org", None).unwrap();
    assert!(
        db.user_attributes(&t, &u).unwrap().is_empty(),
        "values go with the definition"
    );
    assert!(db.attribute_defs(&t).unwrap().is_empty());
    let events = db.audit_events(&t, 1, 100).unwrap();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for a in ["attribute.define", "user.attributes_update", "attribute.remove"] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(
        !serde_json::to_string(&events.iter().map(|e| &e.details).collect::<Vec<_>>())
            .unwrap()
            .contains("secret-org")
    );
}

/// `If-Match` on a definition's removal is checked by the delete statement itself: a version
/// that is not the stored one is `Stale`, and the definition and its values stay.
fn a_removal_under_a_stale_version_removes_nothing(db: &Db) {
    let t = tenant(db, "acme");
    let u = user(db, &t, "carol");
    let def = define(db, &t, "org", AttributeKind::String, (false, false, ADMIN)).unwrap();
    set(db, &t, &u, "org", Some(json!("acme")), ADMIN).unwrap();
    let e = db
        .remove_attribute(&t, ACTOR, "org", Some(def.updated_at - 1))
        .unwrap_err();
    assert!(matches!(e, StoreError::Stale(_)), "{e}");
    assert_eq!(db.attribute_defs(&t).unwrap().len(), 1);
    assert_eq!(
        db.user_attributes(&t, &u).unwrap()["org"],
        json!("acme"),
        "the values stay"
    );
    let missing = db.remove_attribute(&t, ACTOR, "nope", Some(def.updated_at));
    assert!(matches!(missing, Err(StoreError::NotFound { .. })), "{missing:?}");
    db.remove_attribute(&t, ACTOR, "org", Some(def.updated_at))
        .unwrap();
    assert!(db.attribute_defs(&t).unwrap().is_empty());
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { let t = latchkey_tests::TestDb::sqlite(); super::$name(&t.db); } )*
        }
        mod postgres {
            $( #[test] fn $name() { let Some(t) = latchkey_tests::TestDb::postgres() else { return }; super::$name(&t.db); } )*
        }
    };
}

contract!(
    values_are_typed_and_checked,
    unique_required_and_editable_by_hold,
    removal_isolation_and_audit,
    a_removal_under_a_stale_version_removes_nothing
);
