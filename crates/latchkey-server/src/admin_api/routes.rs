//! The admin API's route table: every route with the one permission it needs and the types of
//! its query, request and response. The actix routes, the permission check in
//! [`super::authenticate`], the OpenAPI document ([`super::openapi`]) and the permission-matrix
//! tests are all made from this one list, so a route cannot be served without saying what it
//! needs, and its schemas are those of the types its handler reads and writes.

use super::PageQuery;
use super::schema::MergePatch;
use super::{
    accounts, admin, apply, attributes, chain, clients, domains, groups, incidents, invitations, keys,
    oidc_connections, policies, saml, saml_onboarding, sessions, system, users,
};
use actix_web::web;
use latchkey_core::{
    AdminRoleDef, AttributeDef, Client, ClientRole, Group, OidcConnection, Permission, Role, SamlConnection,
    TenantPolicy, User,
};
use latchkey_keys::RingKey;
use latchkey_services::clients::ClientSpec;
use latchkey_services::tenant_file::TenantFile;
use latchkey_store::Invitation;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// Makes a type's schema in a generator (a `$ref` into its definitions for a named type).
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// A body a route reads or answers: the schema of its JSON, and the other media types it may
/// come as (text the handler parses or writes itself, such as YAML or CSV).
#[derive(Debug, Clone, Copy)]
pub struct Body {
    pub schema: SchemaFn,
    /// Whether a request without one is refused (when not, an empty body means the defaults).
    pub required: bool,
    pub also: &'static [&'static str],
}

impl Body {
    const fn json<T: JsonSchema>(required: bool, also: &'static [&'static str]) -> Body {
        Body {
            schema: reference::<T>,
            required,
            also,
        }
    }
}

fn reference<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// The schema of `T` itself, not a reference (a query's members become parameters).
fn inline<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

/// One admin route: method, path below `/admin/t/{tenant}`, the permission it needs (with
/// any it needs besides, for a route that shows several parts of the tenant), and what it
/// reads and answers. A route without a `response` (or a PATCH without a `request`) fails
/// the test `every_route_has_its_schemas`.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub permission: Permission,
    pub also: &'static [Permission],
    /// The query string's parameters: the members of this object schema.
    pub query: Option<SchemaFn>,
    pub request: Option<Body>,
    pub response: Option<Body>,
}

/// The prefix every route in [`ROUTES`] is below.
pub const PREFIX: &str = "/admin/t/{tenant}";

/// The prefix every route in [`SYSTEM_ROUTES`] is below: the installation's scope, opened by
/// system credentials (`lks_` tokens) only.
pub const SYSTEM_PREFIX: &str = "/admin/system";

/// Registers the OpenAPI document and every route of [`ROUTES`] and [`SYSTEM_ROUTES`].
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/openapi.json", web::get().to(super::openapi::serve));
    tenant_scope(cfg);
    system_scope(cfg);
}

macro_rules! some {
    () => { None };
    ($($x:tt)+) => { Some($($x)+) };
}

/// `configure_fn, ROUTES_NAME, PREFIX;` then one line per route: `method "path" => handler,
/// Permission [+ Also…] [, body LIMIT] [, query Q] [, in T [| "media"…]] [, in_opt T]
/// [, out T [| "media"…]];` — `in_opt` is a body that may be left out.
macro_rules! table {
    ($configure:ident, $routes:ident, $prefix:expr;
     $( $method:ident $path:literal => $handler:path, $perm:ident $(+ $also:ident)*
        $(, body $limit:expr)? $(, query $q:ty)? $(, in $in:ty $(| $inm:literal)*)? $(, in_opt $inopt:ty)?
        $(, out $out:ty $(| $outm:literal)*)?; )*) => {
        fn $configure(cfg: &mut web::ServiceConfig) {
            let scope = web::scope($prefix);
            $( let scope = add(scope, $path, web::$method().to($handler), None $( .or(Some($limit)) )?); )*
            cfg.service(scope);
        }

        /// Every route of the scope, in the order they are matched.
        pub const $routes: &[Route] = &[
            $( Route {
                method: method_name(stringify!($method)),
                path: $path,
                permission: Permission::$perm,
                also: &[$( Permission::$also ),*],
                query: some!($( inline::<$q> as SchemaFn )?),
                request: some!($( Body::json::<$in>(true, &[$($inm),*]) )? $( Body::json::<$inopt>(false, &[]) )?),
                response: some!($( Body::json::<$out>(true, &[$($outm),*]) )?),
            } ),*
        ];
    };
}
/// One route; `body` raises the request body limit for it alone (a tenant file is larger than
/// the 16 KiB the other bodies may be).
fn add(
    scope: actix_web::Scope,
    path: &str,
    route: actix_web::Route,
    body: Option<usize>,
) -> actix_web::Scope {
    match body {
        Some(limit) => scope.service(
            web::resource(path)
                .app_data(web::PayloadConfig::new(limit))
                .route(route),
        ),
        None => scope.route(path, route),
    }
}

const fn method_name(m: &str) -> &'static str {
    match m.as_bytes() {
        b"get" => "GET",
        b"post" => "POST",
        b"put" => "PUT",
        b"patch" => "PATCH",
        _ => "DELETE",
    }
}

table! {
    tenant_scope, ROUTES, PREFIX;
    get "/users" => users::list_users, UsersRead, query users::UsersQuery, out Vec<User>;
    get "/users/{id}" => users::get_user, UsersRead, out User;
    post "/users" => accounts::create, UsersWrite, in accounts::NewUserBody, out User;
    patch "/users/{id}" => accounts::update, UsersWrite, in accounts::UserPatch, out User;
    post "/users/{id}/password" => accounts::set_password, UsersCredentials, in accounts::PasswordBody, out User;
    post "/users/{id}/verify-email" => accounts::verify_email, UsersWrite, out User;
    get "/users/{id}/mfa" => accounts::mfa_list, UsersRead, out accounts::Factors;
    delete "/users/{id}/mfa" => accounts::mfa_reset, UsersCredentials, out accounts::FactorsReset;
    delete "/users/{id}/mfa/{factor}" => accounts::mfa_remove, UsersCredentials, out accounts::FactorRemoved;
    get "/users/{id}/roles" => accounts::roles, UsersRead, out accounts::UserAccess;
    get "/users/{id}/export" => accounts::export, UsersExport, out latchkey_services::privacy::UserExport;
    post "/incidents" => incidents::incident, IncidentsManage, in latchkey_services::incident::IncidentPlan, out latchkey_services::incident::IncidentReport;
    get "/users/{id}/grants" => accounts::grants, SessionsRead, out Vec<latchkey_services::grants::ClientGrants>;
    delete "/users/{id}/grants" => accounts::revoke_grants, SessionsRevoke, out accounts::Revocation;
    delete "/users/{id}/grants/{client}" => accounts::revoke_grants, SessionsRevoke, out accounts::Revocation;
    get "/users/{id}/attributes" => attributes::values, UsersRead, out attributes::UserAttributes;
    put "/users/{id}/attributes/{name}" => attributes::set_value, UsersWrite, in attributes::AttributeValue, out attributes::UserAttributes;
    delete "/users/{id}/attributes/{name}" => attributes::set_value, UsersWrite, out attributes::UserAttributes;
    get "/attributes" => attributes::list, AttributesRead, out Vec<AttributeDef>;
    post "/attributes" => attributes::define, AttributesWrite, in attributes::DefineBody, out AttributeDef;
    get "/attributes/{name}" => attributes::get, AttributesRead, out AttributeDef;
    patch "/attributes/{name}" => attributes::update, AttributesWrite, in attributes::AttributePatch, out AttributeDef;
    delete "/attributes/{name}" => attributes::remove, AttributesWrite, out attributes::AttributeDeleted;
    post "/users/{id}/disable" => users::disable_user, UsersDisable, out User;
    post "/users/{id}/enable" => users::enable_user, UsersDisable, out User;
    delete "/users/{id}" => users::delete_user, UsersDelete, out users::UserDeleted;
    post "/users/{id}/erase" => users::erase_user, UsersDelete, in users::EraseBody, out latchkey_services::privacy::Erasure;
    post "/users/{id}/restore" => users::restore_user, UsersDelete, out User;
    get "/users/{id}/sessions" => sessions::list, SessionsRead, out Vec<sessions::SessionView>;
    delete "/users/{id}/sessions" => sessions::end_all, SessionsRevoke, out sessions::SessionsEnded;
    delete "/users/{id}/sessions/{session}" => sessions::end_one, SessionsRevoke, out sessions::SessionEnded;
    post "/invitations" => invitations::create, InvitationsWrite, in invitations::CreateBody, out Invitation;
    get "/invitations" => invitations::list, InvitationsRead, query invitations::InvitationsQuery, out Vec<Invitation>;
    post "/invitations/{id}/revoke" => invitations::revoke, InvitationsWrite, out Invitation;
    post "/invitations/{id}/resend" => invitations::resend, InvitationsWrite, in_opt invitations::ResendBody, out Invitation;
    get "/clients" => clients::list, ClientsRead, query PageQuery, out Vec<Client>;
    post "/clients" => clients::create, ClientsWrite, in ClientSpec, out clients::NewClient;
    delete "/clients/{id}" => clients::delete, ClientsWrite, out clients::ClientDeleted;
    get "/clients/{id}" => clients::get, ClientsRead, out Client;
    patch "/clients/{id}" => clients::update, ClientsWrite, in MergePatch<Client>, out Client;
    get "/clients/{id}/preview" => clients::preview, ClientsRead + UsersRead, query clients::PreviewQuery, out clients::PreviewView;
    post "/clients/{id}/rotate-secret" => clients::rotate_secret, ClientsSecrets, in_opt clients::RotateBody, out clients::RotatedSecret;
    get "/groups" => groups::list_groups, GroupsRead, query PageQuery, out Vec<Group>;
    post "/groups" => groups::create_group, GroupsWrite, in groups::NewBody, out Group;
    get "/groups/{id}" => groups::get_group, GroupsRead, out groups::GroupView;
    patch "/groups/{id}" => groups::update_group, GroupsWrite, in groups::GroupPatch, out Group;
    delete "/groups/{id}" => groups::delete_group, GroupsWrite, out groups::Deleted;
    put "/groups/{id}/members/{kind}/{member}" => groups::member, GroupsWrite, out groups::Membership;
    delete "/groups/{id}/members/{kind}/{member}" => groups::member, GroupsWrite, out groups::Membership;
    get "/clients/{id}/roles" => groups::list_client_roles, RolesRead, query PageQuery, out Vec<ClientRole>;
    post "/clients/{id}/roles" => groups::create_client_role, RolesWrite, in groups::NewBody, out ClientRole;
    delete "/clients/{id}/roles/{role}" => groups::delete_client_role, RolesWrite, out groups::Deleted;
    put "/clients/{id}/roles/{role}/{kind}/{principal}" => groups::client_assignment, RolesWrite, out groups::ClientAssignment;
    delete "/clients/{id}/roles/{role}/{kind}/{principal}" => groups::client_assignment, RolesWrite, out groups::ClientAssignment;
    get "/roles" => groups::list_roles, RolesRead, query PageQuery, out Vec<Role>;
    post "/roles" => groups::create_role, RolesWrite, in groups::NewBody, out Role;
    delete "/roles/{id}" => groups::delete_role, RolesWrite, out groups::Deleted;
    put "/roles/{id}/{kind}/{principal}" => groups::assignment, RolesWrite, out groups::Assignment;
    delete "/roles/{id}/{kind}/{principal}" => groups::assignment, RolesWrite, out groups::Assignment;
    get "/audit" => users::search_audit, AuditRead, query users::AuditQuery,
        out users::AuditPage | "text/csv" | "application/x-ndjson";
    post "/apply" => apply::apply, PoliciesRead + AttributesRead + GroupsRead + RolesRead + ClientsRead + SamlRead,
        body apply::MAX_FILE_BODY, query apply::ApplyQuery, in TenantFile | "application/yaml", out apply::ApplyAnswer;
    get "/export" => apply::export, PoliciesRead + AttributesRead + GroupsRead + RolesRead + ClientsRead + SamlRead,
        query apply::ExportQuery, out TenantFile | "application/yaml";
    get "/audit/verify" => chain::verify, AuditRead, out chain::Verification;
    post "/audit/retention" => chain::retention, PoliciesWrite, out chain::RetentionRun;
    get "/keys" => keys::list, KeysRead, out Vec<RingKey>;
    post "/keys/rotate" => keys::rotate, KeysManage, in_opt keys::RotateBody, out RingKey;
    post "/keys/test-token" => keys::test_token, KeysManage, in_opt keys::RotateBody, out keys::TestToken;
    post "/keys/{kid}/activate" => keys::activate, KeysManage, out keys::KeyAfter;
    post "/keys/{kid}/retire" => keys::retire, KeysManage, out keys::KeyAfter;
    post "/keys/{kid}/revoke" => keys::revoke, KeysManage, out keys::KeyAfter;
    get "/policies" => policies::get, PoliciesRead, out TenantPolicy;
    patch "/policies" => policies::update, PoliciesWrite, in MergePatch<TenantPolicy>, out TenantPolicy;
    get "/saml-connections" => saml::list, SamlRead, query saml::SamlQuery, out Vec<SamlConnection>;
    post "/saml-connections" => saml::create, SamlWrite, in saml::CreateBody, out SamlConnection;
    get "/saml-connections/{id}" => saml::get, SamlRead, out SamlConnection;
    delete "/saml-connections/{id}" => saml::delete, SamlWrite, out saml::SamlDeleted;
    patch "/saml-connections/{id}" => saml::update, SamlWrite, in saml::SamlPatch, out SamlConnection;
    post "/saml-connections/{id}/refresh" => saml::refresh, SamlWrite, out saml::Refreshed;
    get "/saml-connections/{id}/certificates" => saml::certificates, SamlRead, out Vec<saml::Certificate>;
    get "/saml-connections/{id}/health" => saml_onboarding::health, SamlRead, out latchkey_services::saml_health::Health;
    post "/saml-connections/{id}/tests" => saml_onboarding::create, SamlWrite, out saml_onboarding::NewTest;
    get "/saml-connections/{id}/tests/{test}" => saml_onboarding::get, SamlRead, out crate::flow::saml_test::SamlTest;
    get "/oidc-connections" => oidc_connections::list, SamlRead, query oidc_connections::OidcQuery, out Vec<OidcConnection>;
    post "/oidc-connections" => oidc_connections::create, SamlWrite, in oidc_connections::CreateBody, out OidcConnection;
    get "/oidc-connections/{id}" => oidc_connections::get, SamlRead, out OidcConnection;
    patch "/oidc-connections/{id}" => oidc_connections::update, SamlWrite, in oidc_connections::OidcPatch, out OidcConnection;
    delete "/oidc-connections/{id}" => oidc_connections::delete, SamlWrite, out oidc_connections::OidcDeleted;
    post "/oidc-connections/{id}/refresh" => oidc_connections::refresh_now, SamlWrite, out oidc_connections::Refreshed;
    get "/domains" => domains::list, SamlRead, out Vec<domains::Challenge>;
    post "/domains" => domains::add, SamlWrite, in domains::AddBody, out domains::Challenge;
    post "/domains/{domain}/verify" => domains::verify, SamlWrite, out domains::Verification;
    delete "/domains/{domain}" => domains::remove, SamlWrite, out domains::DomainRemoved;
    get "/permissions" => admin::permissions, CredentialsRead, out admin::Known;
    get "/credentials" => admin::list_credentials, CredentialsRead, query PageQuery, out Vec<admin::Credential>;
    post "/credentials" => admin::create_credential, CredentialsWrite, in admin::NewCredential, out admin::NewCredentialView;
    get "/credentials/{id}" => admin::get_credential, CredentialsRead, out admin::Credential;
    patch "/credentials/{id}" => admin::update_credential, CredentialsWrite, in admin::CredentialPatch, out admin::Credential;
    delete "/credentials/{id}" => admin::revoke_credential, CredentialsWrite, out admin::Revoked;
    get "/admin-roles" => admin::list_roles, CredentialsRead, query PageQuery, out Vec<AdminRoleDef>;
    post "/admin-roles" => admin::create_role, CredentialsWrite, in admin::NewRole, out AdminRoleDef;
    get "/admin-roles/{name}" => admin::get_role, CredentialsRead, out AdminRoleDef;
    patch "/admin-roles/{name}" => admin::update_role, CredentialsWrite, in admin::AdminRolePatch, out AdminRoleDef;
    delete "/admin-roles/{name}" => admin::delete_role, CredentialsWrite, out admin::AdminRoleDeleted;
}

table! {
    system_scope, SYSTEM_ROUTES, SYSTEM_PREFIX;
    get "/tenants" => system::list, TenantsRead, query PageQuery, out Vec<system::TenantView>;
    post "/tenants" => system::create, TenantsWrite, in system::NewTenantBody, out system::CreatedTenant;
    get "/tenants/{tenant}" => system::get, TenantsRead, out system::TenantView;
    patch "/tenants/{tenant}" => system::update, TenantsWrite, in system::TenantPatch, out system::TenantView;
    delete "/tenants/{tenant}" => system::delete, TenantsWrite, out system::TenantDeleted;
    post "/tenants/{tenant}/rotate-dek" => system::rotate_dek, MasterKey, out system::DekRotation;
    post "/tenants/{tenant}/move" => system::move_tenant, TenantsWrite, in system::MoveBody, out latchkey_services::residency::MoveReport;
    get "/audit" => users::search_audit, SystemAuditRead, query users::AuditQuery,
        out users::AuditPage | "text/csv" | "application/x-ndjson";
    get "/audit/verify" => chain::verify, SystemAuditRead, out chain::Verification;
}

/// Which credentials open a route: a tenant's, or the installation's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    Tenant,
    System,
}

/// The route `method` `pattern` (as actix matched it, prefix included) and its scope.
pub(super) fn route_for(method: &str, pattern: &str) -> Option<(Scope, &'static Route)> {
    let find =
        |routes: &'static [Route], path: &str| routes.iter().find(|r| r.method == method && r.path == path);
    match pattern.strip_prefix(PREFIX) {
        Some(path) => find(ROUTES, path).map(|r| (Scope::Tenant, r)),
        None => find(SYSTEM_ROUTES, pattern.strip_prefix(SYSTEM_PREFIX)?).map(|r| (Scope::System, r)),
    }
}

#[cfg(test)]
mod tests {
    use super::{ROUTES, SYSTEM_ROUTES};

    /// The routes whose schemas the table does not name yet: every route answers a body, and a
    /// PATCH reads one. (Fill in `out`/`in` when adding a route.)
    #[test]
    fn every_route_has_its_schemas() {
        let missing: Vec<String> = ROUTES
            .iter()
            .chain(SYSTEM_ROUTES)
            .filter(|r| r.response.is_none() || (r.method == "PATCH" && r.request.is_none()))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(missing.is_empty(), "routes without schemas: {missing:#?}");
    }
}
