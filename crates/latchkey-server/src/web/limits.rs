//! Per-route size limits the request middleware applies before a handler runs.

/// The SAML ACS takes bodies up to this size (a whole signed response); the XML inside is capped
/// lower (`latchkey_saml::xml`).
pub(crate) const ACS_MAX_BODY: usize = 1024 * 1024;

/// The admin API's `…/apply` takes a whole tenant file (docs/tenants-as-code.md).
pub(crate) const TENANT_FILE_MAX_BODY: usize = latchkey_services::tenant_file::MAX_FILE_BYTES;

/// The admin API's SAML connections take IdP metadata inline (up to 1 MiB, JSON-escaped).
pub(crate) const ADMIN_METADATA_MAX_BODY: usize = 2 * 1024 * 1024 + 64 * 1024;

/// The largest body the route at `path` accepts (the ACS carries whole SAML responses, `apply`
/// a tenant file, the admin API's SAML connections and the console's form creating one whole
/// metadata documents).
pub(crate) fn body_limit(path: &str, default: usize) -> usize {
    if path.starts_with("/t/") && path.contains("/saml/") && path.ends_with("/acs") {
        default.max(ACS_MAX_BODY)
    } else if path.starts_with("/admin/t/") && path.ends_with("/apply") {
        default.max(TENANT_FILE_MAX_BODY)
    } else if (path.starts_with("/admin/t/") && path.contains("/saml-connections"))
        || (path.starts_with("/t/") && path.ends_with("/admin/do/saml-create"))
    {
        default.max(ADMIN_METADATA_MAX_BODY)
    } else {
        default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_acs_routes_take_large_bodies() {
        assert_eq!(body_limit("/t/acme/saml/corp/acs", 65_536), ACS_MAX_BODY);
        assert_eq!(body_limit("/t/acme/login", 65_536), 65_536);
        assert_eq!(body_limit("/t/acme/token/acs/x", 65_536), 65_536);
        assert_eq!(body_limit("/admin/t/acme/apply", 65_536), TENANT_FILE_MAX_BODY);
        assert_eq!(body_limit("/admin/t/acme/users", 65_536), 65_536);
        assert_eq!(
            body_limit("/t/acme/admin/do/saml-create", 65_536),
            ADMIN_METADATA_MAX_BODY
        );
        assert_eq!(body_limit("/t/acme/admin/do/user-create", 65_536), 65_536);
    }
}
