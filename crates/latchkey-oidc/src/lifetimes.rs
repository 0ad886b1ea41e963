//! How long codes and tokens live: the client's own settings, else its tenant's token policy
//! (RFC 6749 §4.1.2 asks for short-lived codes, so a code never outlives a minute).

use latchkey_core::{Client, Tenant, TokenPolicy};

/// Lifetimes in seconds for one client.
#[allow(clippy::struct_field_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    pub access_secs: i64,
    pub id_secs: i64,
    pub code_secs: i64,
    /// A refresh token unused this long expires; each rotation starts it again.
    pub refresh_idle_secs: i64,
    /// No token of a grant outlives this, counted from the authorization.
    pub refresh_absolute_secs: i64,
    /// How long after a rotation the rotated token is tolerated from its client (see
    /// `TokenPolicy::refresh_reuse_grace_secs`).
    pub refresh_reuse_grace_secs: i64,
}

pub fn lifetimes(t: &Tenant, c: &Client) -> Lifetimes {
    let p: &TokenPolicy = &t.policy.tokens;
    let s = &c.settings;
    Lifetimes {
        access_secs: i64::from(s.access_token_secs.unwrap_or(p.access_token_secs)),
        id_secs: i64::from(s.id_token_secs.unwrap_or(p.id_token_secs)),
        code_secs: i64::from(p.code_secs.min(60)),
        refresh_idle_secs: i64::from(s.refresh_idle_secs.unwrap_or(p.refresh_idle_secs)),
        refresh_absolute_secs: i64::from(s.refresh_absolute_secs.unwrap_or(p.refresh_absolute_secs)),
        refresh_reuse_grace_secs: i64::from(p.refresh_reuse_grace_secs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::ClientType;

    #[test]
    fn lifetimes_come_from_the_client_else_the_tenant() {
        let mut t = crate::testing::tenant();
        t.policy.tokens.access_token_secs = 300;
        t.policy.tokens.id_token_secs = 600;
        t.policy.tokens.code_secs = 600;
        t.policy.tokens.refresh_idle_secs = 3_600;
        t.policy.tokens.refresh_absolute_secs = 86_400;
        let mut c = crate::testing::client(ClientType::Public);
        assert_eq!(
            lifetimes(&t, &c),
            Lifetimes {
                access_secs: 300,
                id_secs: 600,
                code_secs: 60,
                refresh_idle_secs: 3_600,
                refresh_absolute_secs: 86_400,
                refresh_reuse_grace_secs: 10,
            }
        );
        c.settings.access_token_secs = Some(120);
        c.settings.refresh_idle_secs = Some(1_800);
        let l = lifetimes(&t, &c);
        assert_eq!((l.access_secs, l.id_secs, l.refresh_idle_secs), (120, 600, 1_800));
        t.policy.tokens.code_secs = 30;
        assert_eq!(lifetimes(&t, &c).code_secs, 30);
    }
}
