//! `tenant update`'s policy flags applied to a tenant's policy. What the flags set is checked
//! as a whole by `latchkey_services::policy::check`, the rules the admin API's `PATCH
//! …/policies` keeps too; a broken rule is reported under the flag that sets the field.

use crate::cli::PolicyFlags;
use crate::error::CliError;
use latchkey_core::{TenantPolicy, TrustedAuthenticator};

fn bad<T>(message: impl Into<String>) -> Result<T, CliError> {
    Err(CliError::BadFlag(message.into()))
}

/// Sets `target` to `value` when the flag was given.
fn set<T>(target: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *target = value;
    }
}

pub fn apply(mut policy: TenantPolicy, flags: &PolicyFlags) -> Result<TenantPolicy, CliError> {
    set_password(&mut policy, flags);
    set_mfa(&mut policy, flags)?;
    set_branding(&mut policy, flags);
    set_tokens(&mut policy, flags);
    set_keys(&mut policy, flags);
    set_risk(&mut policy, flags);
    set_sessions(&mut policy, flags);
    set_throttle(&mut policy, flags);
    set_signup(&mut policy, flags);
    set_retention(&mut policy, flags);
    set(
        &mut policy.accounts.deletion_grace_days,
        flags.deletion_grace_days,
    );
    set(&mut policy.accounts.erasure_grace_days, flags.erasure_grace_days);
    if let Some(v) = &flags.terms_version {
        policy.terms.version = Some(v.clone()).filter(|v| !v.is_empty());
    }
    if let Some(url) = &flags.terms_url {
        policy.terms.url = Some(url.clone()).filter(|u| !u.is_empty());
    }
    latchkey_services::policy::check(policy)
        .map_err(|e| CliError::BadFlag(format!("{}: {}", flag(e.field), e.message)))
}

/// The flag that sets a policy field (its path in the policy's JSON form).
fn flag(field: &str) -> &str {
    match field {
        "password.min_length" => "--password-min-length",
        "password.max_length" => "--password-max-length",
        "password.history" => "--password-history",
        "mfa.methods" => "--mfa-methods",
        "mfa.passkey_attestation" => "--passkey-trust",
        "branding.logo_url" => "--logo-url",
        "branding.primary_color" => "--primary-color",
        "keys.prepublish_hours" => "--key-prepublish-hours",
        "keys.rotation_days" => "--key-rotation-days",
        "keys.max_token_lifetime_secs" => "--max-token-lifetime-secs",
        "tokens.access_token_secs" => "--access-token-ttl",
        "tokens.id_token_secs" => "--id-token-ttl",
        "tokens.code_secs" => "--code-ttl",
        "tokens.refresh_idle_secs" => "--refresh-idle-ttl",
        "tokens.refresh_absolute_secs" => "--refresh-absolute-ttl",
        "tokens.refresh_reuse_grace_secs" => "--refresh-reuse-grace",
        "risk.step_up" => "--risk-stepup",
        "risk.deny" => "--risk-deny",
        "retention.audit_days" => "--audit-retention-days",
        "retention.risk_history_days" => "--risk-history-retention-days",
        "retention.inactive_notify_days" => "--inactive-notify-days",
        "retention.inactive_disable_days" => "--inactive-disable-days",
        "retention.inactive_delete_days" => "--inactive-delete-days",
        "retention.consent_days" => "--consent-days",
        "retention.invitation_days" => "--invitation-retention-days",
        "retention.outbox_days" => "--outbox-retention-days",
        "session.idle_timeout_secs" => "--session-idle-timeout",
        "throttle.account_free_failures" => "--throttle-account-failures",
        "throttle.address_free_failures" => "--throttle-address-failures",
        "throttle.address_allow" => "--throttle-allow",
        "signup.domains" => "--signup-domains",
        "accounts.deletion_grace_days" => "--deletion-grace-days",
        "accounts.erasure_grace_days" => "--erasure-grace-days",
        "terms.version" => "--terms-version",
        "terms.url" => "--terms-url",
        other => other,
    }
}

fn set_signup(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    set(&mut policy.email.require_verified, flags.require_verified_email);
    set(&mut policy.signup.mode, flags.signup);
    if let Some(list) = &flags.signup_domains {
        policy.signup.domains = list
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_owned)
            .collect();
    }
}

fn set_password(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let password = &mut policy.password;
    set(&mut password.min_length, flags.password_min_length);
    set(&mut password.max_length, flags.password_max_length);
    set(&mut password.require_lowercase, flags.password_require_lowercase);
    set(&mut password.require_uppercase, flags.password_require_uppercase);
    set(&mut password.require_digit, flags.password_require_digit);
    set(&mut password.require_symbol, flags.password_require_symbol);
    if let Some(days) = flags.password_expiry_days {
        password.expiry_days = (days > 0).then_some(days);
    }
    set(&mut password.history, flags.password_history);
}

fn set_mfa(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    if let Some(mode) = flags.mfa {
        policy.mfa.mode = mode;
        policy.mfa_required = false;
    }
    if flags.passkey_trust_none {
        policy.mfa.passkey_attestation.clear();
    }
    for entry in &flags.passkey_trust {
        let trusted = trusted_model(entry)?;
        policy
            .mfa
            .passkey_attestation
            .retain(|model| model.aaguid != trusted.aaguid);
        policy.mfa.passkey_attestation.push(trusted);
    }
    if let Some(methods) = &flags.mfa_methods {
        policy.mfa.methods.clone_from(methods);
    }
    Ok(())
}

/// One `--passkey-trust AAGUID=FILE`: the model's AAGUID and the CA its attestation chains to
/// (checked with the rest of the policy).
fn trusted_model(entry: &str) -> Result<TrustedAuthenticator, CliError> {
    let Some((aaguid, file)) = entry.split_once('=') else {
        return bad(format!("--passkey-trust {entry:?}: expected AAGUID=FILE"));
    };
    let ca_pem = std::fs::read_to_string(file).map_err(|source| CliError::File {
        flag: "--passkey-trust",
        path: file.into(),
        source,
    })?;
    Ok(TrustedAuthenticator {
        aaguid: aaguid.trim().to_ascii_lowercase(),
        ca_pem,
    })
}

/// An empty value removes the logo or the colour.
fn set_branding(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    if let Some(url) = &flags.logo_url {
        policy.branding.logo_url = (!url.is_empty()).then(|| url.clone());
    }
    if let Some(color) = &flags.primary_color {
        policy.branding.primary_color = (!color.is_empty()).then(|| color.clone());
    }
}

fn set_tokens(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let tokens = &mut policy.tokens;
    set(&mut tokens.access_token_secs, flags.access_token_ttl);
    set(&mut tokens.id_token_secs, flags.id_token_ttl);
    set(&mut tokens.code_secs, flags.code_ttl);
    set(&mut tokens.refresh_idle_secs, flags.refresh_idle_ttl);
    set(&mut tokens.refresh_absolute_secs, flags.refresh_absolute_ttl);
    set(&mut tokens.refresh_reuse_grace_secs, flags.refresh_reuse_grace);
}

fn set_keys(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let keys = &mut policy.keys;
    set(&mut keys.rotation_days, flags.key_rotation_days);
    set(&mut keys.prepublish_hours, flags.key_prepublish_hours);
    set(&mut keys.max_token_lifetime_secs, flags.max_token_lifetime_secs);
}

fn set_risk(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let risk = &mut policy.risk;
    set(&mut risk.enabled, flags.risk);
    set(&mut risk.notify_new_device, flags.risk_notify_new_device);
    set(&mut risk.step_up, flags.risk_stepup);
    set(&mut risk.deny, flags.risk_deny);
    set(&mut policy.retention.audit_days, flags.audit_retention_days);
    set(
        &mut policy.retention.risk_history_days,
        flags.risk_history_retention_days,
    );
}

fn set_retention(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let r = &mut policy.retention;
    set(
        &mut r.inactive_notify_days,
        flags.inactive_notify_days.map(|d| d.0),
    );
    set(
        &mut r.inactive_disable_days,
        flags.inactive_disable_days.map(|d| d.0),
    );
    set(
        &mut r.inactive_delete_days,
        flags.inactive_delete_days.map(|d| d.0),
    );
    set(&mut r.consent_days, flags.consent_days.map(|d| d.0));
    set(&mut r.invitation_days, flags.invitation_retention_days);
    set(&mut r.outbox_days, flags.outbox_retention_days);
}

fn set_sessions(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let session = &mut policy.session;
    set(&mut session.idle_timeout_secs, flags.session_idle_timeout);
    set(&mut session.absolute_timeout_secs, flags.session_absolute_timeout);
}

/// `--throttle-allow` adds networks (checked, truncated and deduplicated with the policy).
fn set_throttle(policy: &mut TenantPolicy, flags: &PolicyFlags) {
    let throttle = &mut policy.throttle;
    set(
        &mut throttle.account_free_failures,
        flags.throttle_account_failures,
    );
    set(
        &mut throttle.address_free_failures,
        flags.throttle_address_failures,
    );
    if flags.throttle_allow_none {
        throttle.address_allow.clear();
    }
    throttle
        .address_allow
        .extend(flags.throttle_allow.iter().map(|cidr| cidr.trim().to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_flags_are_checked() {
        let p = TenantPolicy::default();
        let f = PolicyFlags {
            password_min_length: Some(4),
            ..PolicyFlags::default()
        };
        assert!(apply(p.clone(), &f).is_err());
        let f = PolicyFlags {
            password_max_length: Some(32),
            ..PolicyFlags::default()
        };
        assert!(apply(p.clone(), &f).is_err());
        let f = PolicyFlags {
            password_expiry_days: Some(90),
            password_require_digit: Some(true),
            ..PolicyFlags::default()
        };
        let out = apply(p.clone(), &f).unwrap();
        assert_eq!(out.password.expiry_days, Some(90));
        assert!(out.password.require_digit);
        let f = PolicyFlags {
            primary_color: Some("red".into()),
            ..PolicyFlags::default()
        };
        assert!(apply(p.clone(), &f).is_err());
        let f = PolicyFlags {
            logo_url: Some("http://logo.example/x.png".into()),
            ..PolicyFlags::default()
        };
        assert!(apply(p.clone(), &f).is_err(), "logos over https only");
        let f = PolicyFlags {
            logo_url: Some("https://logo.example/x.png".into()),
            primary_color: Some("#0B57D0".into()),
            ..PolicyFlags::default()
        };
        let b = apply(p.clone(), &f).unwrap().branding;
        assert_eq!(b.primary_color.as_deref(), Some("#0b57d0"));
        let f = PolicyFlags {
            key_prepublish_hours: Some(1),
            ..PolicyFlags::default()
        };
        assert!(
            apply(p.clone(), &f).is_err(),
            "pre-publication shorter than two JWKS cache periods"
        );
        let f = PolicyFlags {
            key_rotation_days: Some(1),
            ..PolicyFlags::default()
        };
        assert!(
            apply(p.clone(), &f).is_err(),
            "rotation shorter than pre-publication"
        );
        let f = PolicyFlags {
            key_rotation_days: Some(30),
            key_prepublish_hours: Some(6),
            ..PolicyFlags::default()
        };
        assert_eq!(apply(p.clone(), &f).unwrap().keys.rotation_days, 30);
        let f = PolicyFlags {
            password_expiry_days: Some(0),
            ..PolicyFlags::default()
        };
        assert_eq!(apply(out, &f).unwrap().password.expiry_days, None);
    }

    #[test]
    fn throttle_flags_are_checked() {
        let p = TenantPolicy::default();
        let with = |f: PolicyFlags| apply(p.clone(), &f);
        let ok = with(PolicyFlags {
            throttle_account_failures: Some(10),
            throttle_address_failures: Some(500),
            throttle_allow: vec!["192.0.2.7/24".into(), "2001:db8:5::/48".into()],
            ..PolicyFlags::default()
        })
        .unwrap()
        .throttle;
        assert_eq!((ok.account_free_failures, ok.address_free_failures), (10, 500));
        assert_eq!(ok.address_allow, ["192.0.2.0/24", "2001:db8:5::/48"]);
        for bad in [
            PolicyFlags {
                throttle_account_failures: Some(0),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                throttle_allow: vec!["0.0.0.0/0".into()],
                ..PolicyFlags::default()
            },
            PolicyFlags {
                throttle_allow: vec!["not-a-network".into()],
                ..PolicyFlags::default()
            },
        ] {
            assert!(with(bad).is_err());
        }
    }

    #[test]
    fn token_lifetimes_are_bounded() {
        let p = TenantPolicy::default();
        let with = |f: PolicyFlags| apply(p.clone(), &f);
        let ok = with(PolicyFlags {
            access_token_ttl: Some(300),
            code_ttl: Some(30),
            refresh_idle_ttl: Some(3600),
            refresh_absolute_ttl: Some(7200),
            refresh_reuse_grace: Some(0),
            ..PolicyFlags::default()
        })
        .unwrap()
        .tokens;
        assert_eq!(
            (ok.access_token_secs, ok.code_secs, ok.refresh_absolute_secs),
            (300, 30, 7200)
        );
        assert_eq!(ok.refresh_reuse_grace_secs, 0);
        for bad in [
            PolicyFlags {
                code_ttl: Some(600),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                access_token_ttl: Some(2 * 86_400),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                id_token_ttl: Some(1),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                refresh_idle_ttl: Some(7200),
                refresh_absolute_ttl: Some(3600),
                ..PolicyFlags::default()
            },
            PolicyFlags {
                refresh_reuse_grace: Some(61),
                ..PolicyFlags::default()
            },
        ] {
            assert!(with(bad).is_err());
        }
    }
}
