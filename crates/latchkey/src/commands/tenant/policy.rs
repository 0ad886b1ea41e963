//! `tenant update`'s policy flags applied to a tenant's policy, each checked against the rule it
//! must keep. The checks run in a fixed order, so an operator who gives several bad flags always
//! hears about the same one first.

use crate::cli::PolicyFlags;
use crate::error::CliError;
use latchkey_core::{TenantPolicy, TrustedAuthenticator};
use latchkey_mfa::passkey::{TrustedModel, check_trusted};

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
    apply_password_rules(&mut policy, flags)?;
    apply_mfa(&mut policy, flags)?;
    apply_password_expiry(&mut policy, flags)?;
    apply_branding(&mut policy, flags)?;
    apply_tokens(&mut policy, flags)?;
    apply_keys(&mut policy, flags)?;
    apply_risk(&mut policy, flags)?;
    apply_sessions(&mut policy, flags)?;
    apply_throttle(&mut policy, flags)?;
    apply_signup(&mut policy, flags)?;
    if let Some(days) = flags.deletion_grace_days {
        if days > 90 {
            return bad("--deletion-grace-days must be 0 to 90");
        }
        policy.accounts.deletion_grace_days = days;
    }
    Ok(policy)
}

/// `--require-verified-email`, `--signup`, `--signup-domains`: each domain a checked address
/// domain; `open-for-domains` needs at least one.
fn apply_signup(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    set(&mut policy.email.require_verified, flags.require_verified_email);
    set(&mut policy.signup.mode, flags.signup);
    if let Some(list) = &flags.signup_domains {
        let mut domains = Vec::new();
        for d in list.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let Ok(checked) = latchkey_core::validate::email(&format!("x@{d}")) else {
                return bad(format!("--signup-domains: {d:?} is not a domain"));
            };
            let domain = checked.trim_start_matches("x@").to_owned();
            if !domains.contains(&domain) {
                domains.push(domain);
            }
        }
        policy.signup.domains = domains;
    }
    if policy.signup.mode == latchkey_core::SignupMode::OpenForDomains && policy.signup.domains.is_empty() {
        return bad("--signup open-for-domains needs --signup-domains");
    }
    Ok(())
}

/// Length limits per NIST SP 800-63B §5.1.1.2, and the character classes asked for.
fn apply_password_rules(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let password = &mut policy.password;
    if let Some(length) = flags.password_min_length {
        if length < 8 {
            return bad("--password-min-length must be at least 8 (NIST SP 800-63B)");
        }
        password.min_length = length;
    }
    if let Some(length) = flags.password_max_length {
        if length < 64 {
            return bad("--password-max-length must be at least 64 (NIST SP 800-63B)");
        }
        password.max_length = length;
    }
    if password.min_length > password.max_length {
        return bad("the minimum password length exceeds the maximum");
    }
    set(&mut password.require_lowercase, flags.password_require_lowercase);
    set(&mut password.require_uppercase, flags.password_require_uppercase);
    set(&mut password.require_digit, flags.password_require_digit);
    set(&mut password.require_symbol, flags.password_require_symbol);
    Ok(())
}

fn apply_password_expiry(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    if let Some(days) = flags.password_expiry_days {
        policy.password.expiry_days = (days > 0).then_some(days);
    }
    if flags.password_history.is_some_and(|kept| kept > 24) {
        return bad("--password-history keeps at most the last 24 passwords");
    }
    set(&mut policy.password.history, flags.password_history);
    Ok(())
}

fn apply_mfa(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
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
        if methods.is_empty() {
            return bad("--mfa-methods needs at least one of passkey, totp");
        }
        policy.mfa.methods.clone_from(methods);
    }
    Ok(())
}

/// One `--passkey-trust AAGUID=FILE`: the model's AAGUID and the CA its attestation chains to.
fn trusted_model(entry: &str) -> Result<TrustedAuthenticator, CliError> {
    let Some((aaguid, file)) = entry.split_once('=') else {
        return bad(format!("--passkey-trust {entry:?}: expected AAGUID=FILE"));
    };
    let aaguid = aaguid.trim().to_ascii_lowercase();
    let hex: String = aaguid.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return bad(format!("--passkey-trust: {aaguid:?} is not an AAGUID"));
    }
    let ca_pem = std::fs::read_to_string(file).map_err(|source| CliError::File {
        flag: "--passkey-trust",
        path: file.into(),
        source,
    })?;
    if !ca_pem.contains("-----BEGIN CERTIFICATE-----") {
        return bad(format!("--passkey-trust {file}: not a PEM certificate"));
    }
    check_trusted(&[TrustedModel {
        aaguid: aaguid.clone(),
        ca_pem: ca_pem.clone(),
    }])
    .map_err(|e| CliError::BadFlag(format!("--passkey-trust {entry}: {e}")))?;
    Ok(TrustedAuthenticator { aaguid, ca_pem })
}

/// Logo over https only; colours as `#rrggbb`. An empty value removes either.
fn apply_branding(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    if let Some(url) = &flags.logo_url {
        if !url.is_empty() {
            latchkey_core::validate::https_url("logo_url", url)?;
        }
        policy.branding.logo_url = (!url.is_empty()).then(|| url.clone());
    }
    if let Some(color) = &flags.primary_color {
        let is_rgb =
            color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !color.is_empty() && !is_rgb {
            return bad(format!("--primary-color {color:?}: expected #rrggbb"));
        }
        policy.branding.primary_color = (!color.is_empty()).then(|| color.to_ascii_lowercase());
    }
    Ok(())
}

/// Token lifetimes: short access and ID tokens, codes of at most a minute (RFC 9700 §4.2.1 via
/// RFC 6749 §4.1.2), refresh lifetimes whose absolute limit is not below the idle one.
fn apply_tokens(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let max = policy.keys.max_token_lifetime_secs;
    let tokens = &mut policy.tokens;
    for (flag, secs, target) in [
        (
            "--access-token-ttl",
            flags.access_token_ttl,
            &mut tokens.access_token_secs,
        ),
        ("--id-token-ttl", flags.id_token_ttl, &mut tokens.id_token_secs),
    ] {
        if let Some(secs) = secs {
            if !(10..=max).contains(&secs) {
                return bad(format!(
                    "{flag} must be 10 to {max} seconds (the key policy's maximum token lifetime)"
                ));
            }
            *target = secs;
        }
    }
    if let Some(secs) = flags.code_ttl {
        if !(10..=60).contains(&secs) {
            return bad("--code-ttl must be 10 to 60 seconds");
        }
        tokens.code_secs = secs;
    }
    set(&mut tokens.refresh_idle_secs, flags.refresh_idle_ttl);
    set(&mut tokens.refresh_absolute_secs, flags.refresh_absolute_ttl);
    set(&mut tokens.refresh_reuse_grace_secs, flags.refresh_reuse_grace);
    if tokens.refresh_reuse_grace_secs > 60 {
        return bad("--refresh-reuse-grace: at most 60 seconds (OAuth 2.0 Security BCP: keep it short)");
    }
    if tokens.refresh_idle_secs < 60 || tokens.refresh_absolute_secs < tokens.refresh_idle_secs {
        return bad("refresh lifetimes: idle at least 60 s and absolute at least idle");
    }
    Ok(())
}

/// Pre-publication must outlast two JWKS cache periods, and rotation must leave room for it.
fn apply_keys(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let keys = &mut policy.keys;
    set(&mut keys.rotation_days, flags.key_rotation_days);
    set(&mut keys.prepublish_hours, flags.key_prepublish_hours);
    set(&mut keys.max_token_lifetime_secs, flags.max_token_lifetime_secs);
    let min_prepublish = (2 * latchkey_keys::JWKS_MAX_AGE_SECS).div_ceil(3600) as u32;
    if keys.prepublish_hours < min_prepublish {
        return bad(format!(
            "--key-prepublish-hours must be at least {min_prepublish} (twice the JWKS cache lifetime)"
        ));
    }
    if u64::from(keys.rotation_days) * 24 <= u64::from(keys.prepublish_hours) {
        return bad("--key-rotation-days must be longer than the pre-publication period");
    }
    if keys.max_token_lifetime_secs == 0 {
        return bad("--max-token-lifetime-secs must be positive");
    }
    Ok(())
}

/// Risk bands and the retention of what risk scoring and auditing keep.
fn apply_risk(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let risk = &mut policy.risk;
    set(&mut risk.enabled, flags.risk);
    set(&mut risk.notify_new_device, flags.risk_notify_new_device);
    set(&mut risk.step_up, flags.risk_stepup);
    set(&mut risk.deny, flags.risk_deny);
    if risk.step_up == 0 || risk.deny > 100 || risk.step_up > risk.deny {
        return bad(
            "risk bands: --risk-stepup between 1 and --risk-deny, --risk-deny at most 100 (100 = never deny below a full score)",
        );
    }
    if let Some(days) = flags.audit_retention_days {
        if days < 30 {
            return bad("--audit-retention-days must be at least 30");
        }
        policy.retention.audit_days = days;
    }
    if let Some(days) = flags.risk_history_retention_days {
        if days < 1 {
            return bad("--risk-history-retention-days must be at least 1");
        }
        policy.retention.risk_history_days = days;
    }
    Ok(())
}

fn apply_sessions(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let session = &mut policy.session;
    set(&mut session.idle_timeout_secs, flags.session_idle_timeout);
    set(&mut session.absolute_timeout_secs, flags.session_absolute_timeout);
    if session.idle_timeout_secs < 60 || session.idle_timeout_secs > session.absolute_timeout_secs {
        return bad("the session idle timeout must be at least 60 s and at most the absolute timeout");
    }
    Ok(())
}

/// Brute-force limits: numbers within sane bounds, exempt networks as CIDRs no wider than a /8
/// (IPv4) or a /32 (IPv6), so nobody exempts the internet by mistake.
fn apply_throttle(policy: &mut TenantPolicy, flags: &PolicyFlags) -> Result<(), CliError> {
    let throttle = &mut policy.throttle;
    if let Some(n) = flags.throttle_account_failures {
        if !(1..=100).contains(&n) {
            return bad("--throttle-account-failures must be 1 to 100");
        }
        throttle.account_free_failures = n;
    }
    if let Some(n) = flags.throttle_address_failures {
        if !(1..=100_000).contains(&n) {
            return bad("--throttle-address-failures must be 1 to 100000");
        }
        throttle.address_free_failures = n;
    }
    if flags.throttle_allow_none {
        throttle.address_allow.clear();
    }
    for cidr in &flags.throttle_allow {
        let net: ipnet::IpNet = cidr.trim().parse().map_err(|_| {
            CliError::BadFlag(format!(
                "--throttle-allow {cidr:?}: expected a CIDR such as 192.0.2.0/24"
            ))
        })?;
        let widest = if matches!(net, ipnet::IpNet::V4(_)) { 8 } else { 32 };
        if net.prefix_len() < widest {
            return bad(format!("--throttle-allow {cidr}: wider than a /{widest}"));
        }
        let net = net.trunc().to_string();
        if !throttle.address_allow.contains(&net) {
            throttle.address_allow.push(net);
        }
    }
    Ok(())
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
