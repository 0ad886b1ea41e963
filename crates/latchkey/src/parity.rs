//! CLI ⇔ admin API parity (issue 21): every CLI operation names the admin routes that do the
//! same, and every route the CLI commands that do; the few on one side only say why. The test
//! walks clap's command tree and the server's route tables, so a new command or route without
//! its counterpart (or a reason) fails it.

/// CLI command → the routes doing the same (`METHOD path` as in the route tables).
pub const PARITY: &[(&str, &[&str])] = &[
    ("tenant create", &["POST /admin/system/tenants"]),
    ("tenant list", &["GET /admin/system/tenants"]),
    ("tenant show", &["GET /admin/system/tenants/{tenant}"]),
    (
        "tenant update",
        &[
            "PATCH /admin/system/tenants/{tenant}",
            "PATCH /admin/t/{tenant}/policies",
            "GET /admin/t/{tenant}/policies",
        ],
    ),
    ("tenant delete", &["DELETE /admin/system/tenants/{tenant}"]),
    ("tenant move", &["POST /admin/system/tenants/{tenant}/move"]),
    ("client create", &["POST /admin/t/{tenant}/clients"]),
    ("client update", &["PATCH /admin/t/{tenant}/clients/{id}"]),
    ("client list", &["GET /admin/t/{tenant}/clients"]),
    ("client show", &["GET /admin/t/{tenant}/clients/{id}"]),
    ("client delete", &["DELETE /admin/t/{tenant}/clients/{id}"]),
    ("client preview", &["GET /admin/t/{tenant}/clients/{id}/preview"]),
    (
        "client claims",
        &[
            "GET /admin/t/{tenant}/clients/{id}",
            "PATCH /admin/t/{tenant}/clients/{id}",
        ],
    ),
    (
        "client rotate-secret",
        &["POST /admin/t/{tenant}/clients/{id}/rotate-secret"],
    ),
    ("user create", &["POST /admin/t/{tenant}/users"]),
    ("user list", &["GET /admin/t/{tenant}/users"]),
    ("user show", &["GET /admin/t/{tenant}/users/{id}"]),
    ("user disable", &["POST /admin/t/{tenant}/users/{id}/disable"]),
    ("user enable", &["POST /admin/t/{tenant}/users/{id}/enable"]),
    ("user delete", &["DELETE /admin/t/{tenant}/users/{id}"]),
    ("user restore", &["POST /admin/t/{tenant}/users/{id}/restore"]),
    ("user erase", &["POST /admin/t/{tenant}/users/{id}/erase"]),
    (
        "user set-password",
        &["POST /admin/t/{tenant}/users/{id}/password"],
    ),
    ("user update", &["PATCH /admin/t/{tenant}/users/{id}"]),
    (
        "user verify-email",
        &["POST /admin/t/{tenant}/users/{id}/verify-email"],
    ),
    ("user mfa list", &["GET /admin/t/{tenant}/users/{id}/mfa"]),
    ("user mfa reset", &["DELETE /admin/t/{tenant}/users/{id}/mfa"]),
    (
        "user mfa remove",
        &["DELETE /admin/t/{tenant}/users/{id}/mfa/{factor}"],
    ),
    ("user grants list", &["GET /admin/t/{tenant}/users/{id}/grants"]),
    ("user export", &["GET /admin/t/{tenant}/users/{id}/export"]),
    ("incident", &["POST /admin/t/{tenant}/incidents"]),
    (
        "user grants revoke",
        &[
            "DELETE /admin/t/{tenant}/users/{id}/grants",
            "DELETE /admin/t/{tenant}/users/{id}/grants/{client}",
        ],
    ),
    (
        "audit verify",
        &[
            "GET /admin/t/{tenant}/audit/verify",
            "GET /admin/system/audit/verify",
        ],
    ),
    ("audit export", &["GET /admin/t/{tenant}/audit"]),
    (
        "audit search",
        &["GET /admin/t/{tenant}/audit", "GET /admin/system/audit"],
    ),
    ("audit retention", &["POST /admin/t/{tenant}/audit/retention"]),
    ("admin-token create", &["POST /admin/t/{tenant}/credentials"]),
    (
        "admin-token list",
        &[
            "GET /admin/t/{tenant}/credentials",
            "GET /admin/t/{tenant}/credentials/{id}",
        ],
    ),
    (
        "admin-token update",
        &["PATCH /admin/t/{tenant}/credentials/{id}"],
    ),
    (
        "admin-token revoke",
        &["DELETE /admin/t/{tenant}/credentials/{id}"],
    ),
    ("admin-role permissions", &["GET /admin/t/{tenant}/permissions"]),
    ("admin-role create", &["POST /admin/t/{tenant}/admin-roles"]),
    (
        "admin-role list",
        &[
            "GET /admin/t/{tenant}/admin-roles",
            "GET /admin/t/{tenant}/admin-roles/{name}",
        ],
    ),
    (
        "admin-role update",
        &["PATCH /admin/t/{tenant}/admin-roles/{name}"],
    ),
    (
        "admin-role remove",
        &["DELETE /admin/t/{tenant}/admin-roles/{name}"],
    ),
    ("keys list", &["GET /admin/t/{tenant}/keys"]),
    ("keys rotate", &["POST /admin/t/{tenant}/keys/rotate"]),
    ("keys activate", &["POST /admin/t/{tenant}/keys/{kid}/activate"]),
    ("keys retire", &["POST /admin/t/{tenant}/keys/{kid}/retire"]),
    ("keys revoke", &["POST /admin/t/{tenant}/keys/{kid}/revoke"]),
    (
        "keys rotate-dek",
        &["POST /admin/system/tenants/{tenant}/rotate-dek"],
    ),
    ("keys test-token", &["POST /admin/t/{tenant}/keys/test-token"]),
    ("saml add", &["POST /admin/t/{tenant}/saml-connections"]),
    ("saml list", &["GET /admin/t/{tenant}/saml-connections"]),
    (
        "saml show",
        &[
            "GET /admin/t/{tenant}/saml-connections/{id}",
            "GET /admin/t/{tenant}/saml-connections/{id}/certificates",
        ],
    ),
    ("saml update", &["PATCH /admin/t/{tenant}/saml-connections/{id}"]),
    ("saml remove", &["DELETE /admin/t/{tenant}/saml-connections/{id}"]),
    (
        "saml refresh-metadata",
        &["POST /admin/t/{tenant}/saml-connections/{id}/refresh"],
    ),
    (
        "saml health",
        &["GET /admin/t/{tenant}/saml-connections/{id}/health"],
    ),
    (
        "oidc-connection add",
        &["POST /admin/t/{tenant}/oidc-connections"],
    ),
    (
        "oidc-connection list",
        &["GET /admin/t/{tenant}/oidc-connections"],
    ),
    (
        "oidc-connection show",
        &["GET /admin/t/{tenant}/oidc-connections/{id}"],
    ),
    (
        "oidc-connection update",
        &["PATCH /admin/t/{tenant}/oidc-connections/{id}"],
    ),
    (
        "oidc-connection remove",
        &["DELETE /admin/t/{tenant}/oidc-connections/{id}"],
    ),
    (
        "oidc-connection refresh",
        &["POST /admin/t/{tenant}/oidc-connections/{id}/refresh"],
    ),
    ("domain add", &["POST /admin/t/{tenant}/domains"]),
    ("domain list", &["GET /admin/t/{tenant}/domains"]),
    (
        "domain verify",
        &["POST /admin/t/{tenant}/domains/{domain}/verify"],
    ),
    ("domain remove", &["DELETE /admin/t/{tenant}/domains/{domain}"]),
    (
        "role create",
        &[
            "POST /admin/t/{tenant}/roles",
            "POST /admin/t/{tenant}/clients/{id}/roles",
        ],
    ),
    (
        "role list",
        &[
            "GET /admin/t/{tenant}/roles",
            "GET /admin/t/{tenant}/clients/{id}/roles",
        ],
    ),
    (
        "role remove",
        &[
            "DELETE /admin/t/{tenant}/roles/{id}",
            "DELETE /admin/t/{tenant}/clients/{id}/roles/{role}",
        ],
    ),
    (
        "role assign",
        &[
            "PUT /admin/t/{tenant}/roles/{id}/{kind}/{principal}",
            "PUT /admin/t/{tenant}/clients/{id}/roles/{role}/{kind}/{principal}",
        ],
    ),
    (
        "role unassign",
        &[
            "DELETE /admin/t/{tenant}/roles/{id}/{kind}/{principal}",
            "DELETE /admin/t/{tenant}/clients/{id}/roles/{role}/{kind}/{principal}",
        ],
    ),
    ("role effective", &["GET /admin/t/{tenant}/users/{id}/roles"]),
    ("group create", &["POST /admin/t/{tenant}/groups"]),
    ("group list", &["GET /admin/t/{tenant}/groups"]),
    ("group show", &["GET /admin/t/{tenant}/groups/{id}"]),
    ("group update", &["PATCH /admin/t/{tenant}/groups/{id}"]),
    ("group remove", &["DELETE /admin/t/{tenant}/groups/{id}"]),
    (
        "group add-member",
        &["PUT /admin/t/{tenant}/groups/{id}/members/{kind}/{member}"],
    ),
    (
        "group remove-member",
        &["DELETE /admin/t/{tenant}/groups/{id}/members/{kind}/{member}"],
    ),
    ("invite create", &["POST /admin/t/{tenant}/invitations"]),
    ("invite list", &["GET /admin/t/{tenant}/invitations"]),
    (
        "invite revoke",
        &["POST /admin/t/{tenant}/invitations/{id}/revoke"],
    ),
    (
        "invite resend",
        &["POST /admin/t/{tenant}/invitations/{id}/resend"],
    ),
    ("attribute define", &["POST /admin/t/{tenant}/attributes"]),
    ("attribute update", &["PATCH /admin/t/{tenant}/attributes/{name}"]),
    (
        "attribute list",
        &[
            "GET /admin/t/{tenant}/attributes",
            "GET /admin/t/{tenant}/attributes/{name}",
        ],
    ),
    (
        "attribute remove",
        &["DELETE /admin/t/{tenant}/attributes/{name}"],
    ),
    ("attribute show", &["GET /admin/t/{tenant}/users/{id}/attributes"]),
    (
        "attribute set",
        &["PUT /admin/t/{tenant}/users/{id}/attributes/{name}"],
    ),
    (
        "attribute unset",
        &["DELETE /admin/t/{tenant}/users/{id}/attributes/{name}"],
    ),
    ("apply", &["POST /admin/t/{tenant}/apply"]),
    ("export", &["GET /admin/t/{tenant}/export"]),
];

/// CLI commands with no route, and why.
pub const CLI_ONLY: &[(&str, &str)] = &[
    ("serve", "runs the server itself"),
    (
        "migrate",
        "changes the database schema before a server runs on it",
    ),
    ("demo", "sets up a demo installation and serves it"),
    (
        "user seal",
        "converts users written before sealing, once every node of a rolling upgrade runs this release: an upgrade step, not tenant administration",
    ),
    (
        "backup",
        "reads the whole database in one snapshot into a file sealed under the master key: an operator's file, not an API answer",
    ),
    (
        "restore",
        "fills an empty database from a backup before any server runs on it",
    ),
    (
        "healthcheck",
        "asks a running server whether it is ready; it is `/readyz` itself",
    ),
    (
        "keys rotate-master",
        "the master key is each node's configuration (file or environment), not data: a rotation over HTTP would reach one node and carry key material",
    ),
    (
        "system-token create",
        "system credentials are the system scope's root of trust, made on the host",
    ),
    ("system-token list", "system credentials are managed on the host"),
    (
        "system-token update",
        "system credentials are managed on the host",
    ),
    (
        "system-token revoke",
        "system credentials are managed on the host",
    ),
];

/// Routes with no CLI command, and why.
pub const API_ONLY: &[(&str, &str)] = &[
    (
        "GET /admin/t/{tenant}/users/{id}/sessions",
        "live sessions are held by the running server's session store (in-process by default), out of a CLI process's reach; `user disable`, `user mfa reset` end them through the database",
    ),
    (
        "DELETE /admin/t/{tenant}/users/{id}/sessions",
        "as above: the session store belongs to the running server",
    ),
    (
        "DELETE /admin/t/{tenant}/users/{id}/sessions/{session}",
        "as above: the session store belongs to the running server",
    ),
    (
        "POST /admin/t/{tenant}/saml-connections/{id}/tests",
        "a test sign-in runs in a browser window against the running server, whose session store holds it",
    ),
    (
        "GET /admin/t/{tenant}/saml-connections/{id}/tests/{test}",
        "as above: the test's result is held by the running server's session store",
    ),
];

#[cfg(test)]
mod tests {
    use super::{API_ONLY, CLI_ONLY, PARITY};
    use clap::CommandFactory;
    use std::collections::BTreeSet;

    fn leaves(cmd: &clap::Command, prefix: &str, out: &mut BTreeSet<String>) {
        let subs: Vec<&clap::Command> = cmd.get_subcommands().filter(|c| c.get_name() != "help").collect();
        if subs.is_empty() {
            out.insert(prefix.trim().to_owned());
        }
        for c in subs {
            leaves(c, &format!("{prefix} {}", c.get_name()), out);
        }
    }

    fn routes() -> BTreeSet<String> {
        let tenant = latchkey_server::ADMIN_ROUTES
            .iter()
            .map(|r| format!("{} {}{}", r.method, latchkey_server::ADMIN_PREFIX, r.path));
        let system = latchkey_server::ADMIN_SYSTEM_ROUTES
            .iter()
            .map(|r| format!("{} {}{}", r.method, latchkey_server::ADMIN_SYSTEM_PREFIX, r.path));
        tenant.chain(system).collect()
    }

    #[test]
    fn every_cli_operation_has_a_route_or_a_reason() {
        let mut commands = BTreeSet::new();
        leaves(&crate::cli::Cli::command(), "", &mut commands);
        let listed: BTreeSet<String> = PARITY
            .iter()
            .map(|(c, _)| (*c).to_owned())
            .chain(CLI_ONLY.iter().map(|(c, _)| (*c).to_owned()))
            .collect();
        let missing: Vec<_> = commands.difference(&listed).collect();
        let stale: Vec<_> = listed.difference(&commands).collect();
        assert!(
            missing.is_empty(),
            "CLI commands without a route or a reason: {missing:?}"
        );
        assert!(stale.is_empty(), "listed commands that do not exist: {stale:?}");
    }

    #[test]
    fn every_route_has_a_cli_operation_or_a_reason() {
        let routes = routes();
        let mapped: BTreeSet<String> = PARITY
            .iter()
            .flat_map(|(_, r)| r.iter().map(|r| (*r).to_owned()))
            .chain(API_ONLY.iter().map(|(r, _)| (*r).to_owned()))
            .collect();
        let missing: Vec<_> = routes.difference(&mapped).collect();
        let stale: Vec<_> = mapped.difference(&routes).collect();
        assert!(
            missing.is_empty(),
            "routes without a CLI command or a reason: {missing:?}"
        );
        assert!(stale.is_empty(), "listed routes that do not exist: {stale:?}");
    }
}
