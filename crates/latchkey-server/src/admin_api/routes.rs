//! The admin API's route table: every route with the one permission it needs. The actix routes,
//! the permission check in [`super::authenticate`] and the permission-matrix tests are all made
//! from this one list, so a route cannot be served without saying what it needs.

use super::{
    accounts, admin, apply, attributes, chain, clients, groups, invitations, keys, policies, saml, sessions,
    system, users,
};
use actix_web::web;
use latchkey_core::Permission;

/// One admin route: method, path below `/admin/t/{tenant}`, and the permission it needs (with
/// any it needs besides, for a route that shows several parts of the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub permission: Permission,
    pub also: &'static [Permission],
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

macro_rules! table {
    ($configure:ident, $routes:ident, $prefix:expr;
     $( $method:ident $path:literal => $handler:path, $perm:ident $(+ $also:ident)* $(, body $limit:expr)?; )*) => {
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
    get "/users" => users::list_users, UsersRead;
    get "/users/{id}" => users::get_user, UsersRead;
    post "/users" => accounts::create, UsersWrite;
    patch "/users/{id}" => accounts::update, UsersWrite;
    post "/users/{id}/password" => accounts::set_password, UsersCredentials;
    post "/users/{id}/verify-email" => accounts::verify_email, UsersWrite;
    get "/users/{id}/mfa" => accounts::mfa_list, UsersRead;
    delete "/users/{id}/mfa" => accounts::mfa_reset, UsersCredentials;
    delete "/users/{id}/mfa/{factor}" => accounts::mfa_remove, UsersCredentials;
    get "/users/{id}/roles" => accounts::roles, UsersRead;
    get "/users/{id}/grants" => accounts::grants, SessionsRead;
    delete "/users/{id}/grants" => accounts::revoke_grants, SessionsRevoke;
    delete "/users/{id}/grants/{client}" => accounts::revoke_grants, SessionsRevoke;
    get "/users/{id}/attributes" => attributes::values, UsersRead;
    put "/users/{id}/attributes/{name}" => attributes::set_value, UsersWrite;
    delete "/users/{id}/attributes/{name}" => attributes::set_value, UsersWrite;
    get "/attributes" => attributes::list, AttributesRead;
    post "/attributes" => attributes::define, AttributesWrite;
    get "/attributes/{name}" => attributes::get, AttributesRead;
    patch "/attributes/{name}" => attributes::update, AttributesWrite;
    delete "/attributes/{name}" => attributes::remove, AttributesWrite;
    post "/users/{id}/disable" => users::disable_user, UsersDisable;
    post "/users/{id}/enable" => users::enable_user, UsersDisable;
    delete "/users/{id}" => users::delete_user, UsersDelete;
    post "/users/{id}/restore" => users::restore_user, UsersDelete;
    get "/users/{id}/sessions" => sessions::list, SessionsRead;
    delete "/users/{id}/sessions" => sessions::end_all, SessionsRevoke;
    delete "/users/{id}/sessions/{session}" => sessions::end_one, SessionsRevoke;
    post "/invitations" => invitations::create, InvitationsWrite;
    get "/invitations" => invitations::list, InvitationsRead;
    post "/invitations/{id}/revoke" => invitations::revoke, InvitationsWrite;
    post "/invitations/{id}/resend" => invitations::resend, InvitationsWrite;
    get "/clients" => clients::list, ClientsRead;
    post "/clients" => clients::create, ClientsWrite;
    delete "/clients/{id}" => clients::delete, ClientsWrite;
    get "/clients/{id}" => clients::get, ClientsRead;
    patch "/clients/{id}" => clients::update, ClientsWrite;
    post "/clients/{id}/rotate-secret" => clients::rotate_secret, ClientsSecrets;
    get "/groups" => groups::list_groups, GroupsRead;
    post "/groups" => groups::create_group, GroupsWrite;
    get "/groups/{id}" => groups::get_group, GroupsRead;
    patch "/groups/{id}" => groups::update_group, GroupsWrite;
    delete "/groups/{id}" => groups::delete_group, GroupsWrite;
    put "/groups/{id}/members/{kind}/{member}" => groups::member, GroupsWrite;
    delete "/groups/{id}/members/{kind}/{member}" => groups::member, GroupsWrite;
    get "/clients/{id}/roles" => groups::list_client_roles, RolesRead;
    post "/clients/{id}/roles" => groups::create_client_role, RolesWrite;
    delete "/clients/{id}/roles/{role}" => groups::delete_client_role, RolesWrite;
    put "/clients/{id}/roles/{role}/{kind}/{principal}" => groups::client_assignment, RolesWrite;
    delete "/clients/{id}/roles/{role}/{kind}/{principal}" => groups::client_assignment, RolesWrite;
    get "/roles" => groups::list_roles, RolesRead;
    post "/roles" => groups::create_role, RolesWrite;
    delete "/roles/{id}" => groups::delete_role, RolesWrite;
    put "/roles/{id}/{kind}/{principal}" => groups::assignment, RolesWrite;
    delete "/roles/{id}/{kind}/{principal}" => groups::assignment, RolesWrite;
    get "/audit" => users::search_audit, AuditRead;
    post "/apply" => apply::apply, PoliciesRead + AttributesRead + GroupsRead + RolesRead + ClientsRead + SamlRead,
        body apply::MAX_FILE_BODY;
    get "/export" => apply::export, PoliciesRead + AttributesRead + GroupsRead + RolesRead + ClientsRead + SamlRead;
    get "/audit/verify" => chain::verify, AuditRead;
    post "/audit/retention" => chain::retention, PoliciesWrite;
    get "/keys" => keys::list, KeysRead;
    post "/keys/rotate" => keys::rotate, KeysManage;
    post "/keys/test-token" => keys::test_token, KeysManage;
    post "/keys/{kid}/activate" => keys::activate, KeysManage;
    post "/keys/{kid}/retire" => keys::retire, KeysManage;
    post "/keys/{kid}/revoke" => keys::revoke, KeysManage;
    get "/policies" => policies::get, PoliciesRead;
    patch "/policies" => policies::update, PoliciesWrite;
    get "/saml-connections" => saml::list, SamlRead;
    post "/saml-connections" => saml::create, SamlWrite;
    get "/saml-connections/{id}" => saml::get, SamlRead;
    delete "/saml-connections/{id}" => saml::delete, SamlWrite;
    patch "/saml-connections/{id}" => saml::update, SamlWrite;
    post "/saml-connections/{id}/refresh" => saml::refresh, SamlWrite;
    get "/saml-connections/{id}/certificates" => saml::certificates, SamlRead;
    get "/permissions" => admin::permissions, CredentialsRead;
    get "/credentials" => admin::list_credentials, CredentialsRead;
    post "/credentials" => admin::create_credential, CredentialsWrite;
    get "/credentials/{id}" => admin::get_credential, CredentialsRead;
    patch "/credentials/{id}" => admin::update_credential, CredentialsWrite;
    delete "/credentials/{id}" => admin::revoke_credential, CredentialsWrite;
    get "/admin-roles" => admin::list_roles, CredentialsRead;
    post "/admin-roles" => admin::create_role, CredentialsWrite;
    get "/admin-roles/{name}" => admin::get_role, CredentialsRead;
    patch "/admin-roles/{name}" => admin::update_role, CredentialsWrite;
    delete "/admin-roles/{name}" => admin::delete_role, CredentialsWrite;
}

table! {
    system_scope, SYSTEM_ROUTES, SYSTEM_PREFIX;
    get "/tenants" => system::list, TenantsRead;
    post "/tenants" => system::create, TenantsWrite;
    get "/tenants/{tenant}" => system::get, TenantsRead;
    patch "/tenants/{tenant}" => system::update, TenantsWrite;
    delete "/tenants/{tenant}" => system::delete, TenantsWrite;
    post "/tenants/{tenant}/rotate-dek" => system::rotate_dek, MasterKey;
    get "/audit" => users::search_audit, SystemAuditRead;
    get "/audit/verify" => chain::verify, SystemAuditRead;
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
