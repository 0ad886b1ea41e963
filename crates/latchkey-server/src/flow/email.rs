//! Verified email in the sign-in lifecycle: what a signed-in user still owes before a code is
//! issued to a client (tenant policy `email.require_verified`), and where they go to settle it.
//! Like a second factor (`factor`), it is asked for where the flow would otherwise finish; unlike
//! one, the session stays usable for the account pages, since the person needs them to re-send
//! the link. The pages are `login`'s.

use latchkey_core::{Tenant, User};

/// The user may not be handed to a client yet: the tenant requires a verified address and the
/// user's is not (or the user has none).
pub(crate) fn owes_verified_email(tenant: &Tenant, user: &User) -> bool {
    tenant.policy.email.require_verified && !(user.email_verified && user.email.is_some())
}

/// Where a user owing a verified address goes, continuing to `next` afterwards.
pub(crate) fn page_for(tenant: &Tenant, next: &str) -> String {
    crate::web::urls::email_unverified(&tenant.slug, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::{TenantPolicy, UserStatus};

    fn tenant(require: bool) -> Tenant {
        let mut policy = TenantPolicy::default();
        policy.email.require_verified = require;
        Tenant {
            id: "t".into(),
            slug: "acme".into(),
            display_name: "Acme".into(),
            policy,
            created_at: 0,
            updated_at: 0,
        }
    }

    fn user(email: Option<&str>, verified: bool) -> User {
        User {
            id: "u".into(),
            tenant_id: "t".into(),
            username: "alice".into(),
            email: email.map(str::to_owned),
            email_verified: verified,
            display_name: None,
            status: UserStatus::Active,
            password_hash: None,
            password_changed_at: None,
            sessions_not_before: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn only_a_requiring_tenant_holds_back_unverified_users() {
        let a = Some("a@acme.test");
        assert!(!owes_verified_email(&tenant(false), &user(a, false)));
        assert!(owes_verified_email(&tenant(true), &user(a, false)));
        assert!(!owes_verified_email(&tenant(true), &user(a, true)));
        assert!(owes_verified_email(&tenant(true), &user(None, false)));
    }

    #[test]
    fn the_page_continues_to_where_the_flow_was() {
        assert_eq!(
            page_for(&tenant(true), "/t/acme/authorize/resume?interaction=x"),
            "/t/acme/email/unverified?return_to=%2Ft%2Facme%2Fauthorize%2Fresume%3Finteraction%3Dx"
        );
    }
}
