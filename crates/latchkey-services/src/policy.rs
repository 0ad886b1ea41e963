//! The rules a tenant's policy keeps, checked over the whole policy, for `latchkey tenant
//! update` and the admin API's `PATCH …/policies` alike. The checks run in a fixed order, so a
//! policy with several faults is always refused for the same one first; the error names the
//! field by its path in the policy's JSON form (`password.min_length`).

use latchkey_core::{SignupMode, TenantPolicy, ValidationError};
use latchkey_mfa::passkey::{TrustedModel, check_trusted};

fn bad<T>(field: &'static str, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError {
        field,
        message: message.into(),
    })
}

/// `policy` checked and normalized (colours lowercased, networks truncated to their prefix,
/// domains lowercased and deduplicated, a zero password expiry meaning none).
pub fn check(mut policy: TenantPolicy) -> Result<TenantPolicy, ValidationError> {
    password(&mut policy)?;
    mfa(&policy)?;
    branding(&mut policy)?;
    keys(&policy)?;
    tokens(&policy)?;
    risk(&policy)?;
    sessions(&policy)?;
    throttle(&mut policy)?;
    signup(&mut policy)?;
    if policy.accounts.deletion_grace_days > 90 {
        return bad("accounts.deletion_grace_days", "must be 0 to 90");
    }
    if policy.accounts.erasure_grace_days > 90 {
        return bad("accounts.erasure_grace_days", "must be 0 to 90");
    }
    terms(&mut policy)?;
    Ok(policy)
}

/// A terms version is a short printable label and comes with the https address of its text; an
/// empty version clears the requirement.
fn terms(policy: &mut TenantPolicy) -> Result<(), ValidationError> {
    let t = &mut policy.terms;
    if t.version.as_deref().is_some_and(|v| v.trim().is_empty()) {
        t.version = None;
    }
    if let Some(url) = &t.url {
        latchkey_core::validate::https_url("terms.url", url)?;
    }
    let Some(version) = &t.version else {
        return Ok(());
    };
    if version.len() > 64 || !version.chars().all(|c| c.is_ascii_graphic() || c == ' ') {
        return bad("terms.version", "must be at most 64 printable ASCII characters");
    }
    if t.url.is_none() {
        return bad(
            "terms.url",
            "is needed with terms.version: people must be able to read what they accept",
        );
    }
    Ok(())
}

/// Length limits per NIST SP 800-63B §5.1.1.2; at most 24 remembered passwords.
fn password(policy: &mut TenantPolicy) -> Result<(), ValidationError> {
    let p = &mut policy.password;
    if p.min_length < 8 {
        return bad("password.min_length", "must be at least 8 (NIST SP 800-63B)");
    }
    if p.max_length < 64 {
        return bad("password.max_length", "must be at least 64 (NIST SP 800-63B)");
    }
    if p.min_length > p.max_length {
        return bad("password.min_length", "exceeds the maximum length");
    }
    if p.expiry_days == Some(0) {
        p.expiry_days = None;
    }
    if p.history > 24 {
        return bad("password.history", "keeps at most the last 24 passwords");
    }
    Ok(())
}

/// At least one factor; each trusted passkey model an AAGUID with a CA its attestation chains
/// to.
fn mfa(policy: &TenantPolicy) -> Result<(), ValidationError> {
    if policy.mfa.methods.is_empty() {
        return bad("mfa.methods", "needs at least one of passkey, totp");
    }
    let mut models = Vec::with_capacity(policy.mfa.passkey_attestation.len());
    for model in &policy.mfa.passkey_attestation {
        let hex: String = model.aaguid.chars().filter(|c| *c != '-').collect();
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return bad(
                "mfa.passkey_attestation",
                format!("{:?} is not an AAGUID", model.aaguid),
            );
        }
        if !model.ca_pem.contains("-----BEGIN CERTIFICATE-----") {
            return bad(
                "mfa.passkey_attestation",
                format!("the CA of {} is not a PEM certificate", model.aaguid),
            );
        }
        models.push(TrustedModel {
            aaguid: model.aaguid.to_ascii_lowercase(),
            ca_pem: model.ca_pem.clone(),
        });
    }
    check_trusted(&models).or_else(|e| bad("mfa.passkey_attestation", e.to_string()))
}

/// A logo over https only; a colour as `#rrggbb`.
fn branding(policy: &mut TenantPolicy) -> Result<(), ValidationError> {
    let b = &mut policy.branding;
    if let Some(url) = &b.logo_url {
        latchkey_core::validate::https_url("branding.logo_url", url)?;
    }
    if let Some(color) = &b.primary_color {
        let is_rgb =
            color.len() == 7 && color.starts_with('#') && color[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !is_rgb {
            return bad("branding.primary_color", format!("{color:?}: expected #rrggbb"));
        }
        b.primary_color = Some(color.to_ascii_lowercase());
    }
    Ok(())
}

/// Pre-publication outlasts two JWKS cache periods, and rotation leaves room for it.
fn keys(policy: &TenantPolicy) -> Result<(), ValidationError> {
    let k = &policy.keys;
    let min_prepublish =
        u32::try_from((2 * latchkey_keys::JWKS_MAX_AGE_SECS).div_ceil(3600)).unwrap_or(u32::MAX);
    if k.prepublish_hours < min_prepublish {
        return bad(
            "keys.prepublish_hours",
            format!("must be at least {min_prepublish} (twice the JWKS cache lifetime)"),
        );
    }
    if u64::from(k.rotation_days) * 24 <= u64::from(k.prepublish_hours) {
        return bad(
            "keys.rotation_days",
            "must be longer than the pre-publication period",
        );
    }
    if k.max_token_lifetime_secs == 0 {
        return bad("keys.max_token_lifetime_secs", "must be positive");
    }
    Ok(())
}

/// Short access and ID tokens, codes of at most a minute (RFC 9700 §4.2.1 via RFC 6749
/// §4.1.2), refresh lifetimes whose absolute limit is not below the idle one.
fn tokens(policy: &TenantPolicy) -> Result<(), ValidationError> {
    let max = policy.keys.max_token_lifetime_secs;
    let t = &policy.tokens;
    for (field, secs) in [
        ("tokens.access_token_secs", t.access_token_secs),
        ("tokens.id_token_secs", t.id_token_secs),
    ] {
        if !(10..=max).contains(&secs) {
            return bad(
                field,
                format!("must be 10 to {max} seconds (the key policy's maximum token lifetime)"),
            );
        }
    }
    if !(10..=60).contains(&t.code_secs) {
        return bad("tokens.code_secs", "must be 10 to 60 seconds");
    }
    if t.refresh_reuse_grace_secs > 60 {
        return bad(
            "tokens.refresh_reuse_grace_secs",
            "at most 60 seconds (OAuth 2.0 Security BCP: keep it short)",
        );
    }
    if t.refresh_idle_secs < 60 {
        return bad("tokens.refresh_idle_secs", "must be at least 60 seconds");
    }
    if t.refresh_absolute_secs < t.refresh_idle_secs {
        return bad(
            "tokens.refresh_absolute_secs",
            "must be at least the idle lifetime",
        );
    }
    Ok(())
}

/// Risk bands, and the retention of what risk scoring and auditing keep.
fn risk(policy: &TenantPolicy) -> Result<(), ValidationError> {
    let r = &policy.risk;
    if r.step_up == 0 || r.step_up > r.deny {
        return bad("risk.step_up", "risk bands: step_up must be between 1 and deny");
    }
    if r.deny > 100 {
        return bad(
            "risk.deny",
            "risk bands: deny must be at most 100 (100 = never deny below a full score)",
        );
    }
    if policy.retention.audit_days < 30 {
        return bad("retention.audit_days", "must be at least 30");
    }
    if policy.retention.risk_history_days < 1 {
        return bad("retention.risk_history_days", "must be at least 1");
    }
    retention(&policy.retention)
}

/// Every period at least a day, and an inactive account is warned before it is disabled and
/// disabled before it is deleted.
fn retention(r: &latchkey_core::RetentionPolicy) -> Result<(), ValidationError> {
    let periods = [
        ("retention.inactive_notify_days", r.inactive_notify_days),
        ("retention.inactive_disable_days", r.inactive_disable_days),
        ("retention.inactive_delete_days", r.inactive_delete_days),
        ("retention.consent_days", r.consent_days),
        ("retention.invitation_days", Some(r.invitation_days)),
        ("retention.outbox_days", Some(r.outbox_days)),
    ];
    for (field, days) in periods {
        if days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return bad(field, "must be 1 to 36500 days");
        }
    }
    let steps = [
        r.inactive_notify_days,
        r.inactive_disable_days,
        r.inactive_delete_days,
    ];
    let set: Vec<u32> = steps.iter().flatten().copied().collect();
    if set.windows(2).any(|w| w[0] >= w[1]) {
        return bad(
            "retention.inactive_disable_days",
            "inactive accounts are warned, then disabled, then deleted: each period must be longer than the one before",
        );
    }
    Ok(())
}

fn sessions(policy: &TenantPolicy) -> Result<(), ValidationError> {
    let s = &policy.session;
    if s.idle_timeout_secs < 60 {
        return bad("session.idle_timeout_secs", "must be at least 60 seconds");
    }
    if s.idle_timeout_secs > s.absolute_timeout_secs {
        return bad(
            "session.idle_timeout_secs",
            "must be at most the absolute timeout",
        );
    }
    Ok(())
}

/// Brute-force limits within sane bounds; exempt networks as CIDRs no wider than a /8 (IPv4)
/// or a /32 (IPv6), so nobody exempts the internet by mistake.
fn throttle(policy: &mut TenantPolicy) -> Result<(), ValidationError> {
    let t = &mut policy.throttle;
    if !(1..=100).contains(&t.account_free_failures) {
        return bad("throttle.account_free_failures", "must be 1 to 100");
    }
    if !(1..=100_000).contains(&t.address_free_failures) {
        return bad("throttle.address_free_failures", "must be 1 to 100000");
    }
    let mut nets = Vec::with_capacity(t.address_allow.len());
    for cidr in &t.address_allow {
        let Ok(net) = cidr.trim().parse::<ipnet::IpNet>() else {
            return bad(
                "throttle.address_allow",
                format!("{cidr:?}: expected a CIDR such as 192.0.2.0/24"),
            );
        };
        let widest = if matches!(net, ipnet::IpNet::V4(_)) { 8 } else { 32 };
        if net.prefix_len() < widest {
            return bad(
                "throttle.address_allow",
                format!("{cidr}: wider than a /{widest}"),
            );
        }
        let net = net.trunc().to_string();
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    t.address_allow = nets;
    Ok(())
}

/// Sign-up domains are address domains; `open-for-domains` needs at least one.
fn signup(policy: &mut TenantPolicy) -> Result<(), ValidationError> {
    let s = &mut policy.signup;
    let mut domains = Vec::with_capacity(s.domains.len());
    for d in &s.domains {
        let Ok(checked) = latchkey_core::validate::email(&format!("x@{}", d.trim())) else {
            return bad("signup.domains", format!("{d:?} is not a domain"));
        };
        let domain = checked.trim_start_matches("x@").to_owned();
        if !domains.contains(&domain) {
            domains.push(domain);
        }
    }
    s.domains = domains;
    if s.mode == SignupMode::OpenForDomains && s.domains.is_empty() {
        return bad("signup.domains", "open-for-domains needs at least one domain");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_passes_unchanged() {
        let p = TenantPolicy::default();
        assert_eq!(check(p.clone()).unwrap(), p);
    }

    #[test]
    fn a_broken_rule_names_its_field() {
        let mut p = TenantPolicy::default();
        p.password.min_length = 4;
        assert_eq!(check(p).unwrap_err().field, "password.min_length");
        let mut p = TenantPolicy::default();
        p.tokens.code_secs = 600;
        assert_eq!(check(p).unwrap_err().field, "tokens.code_secs");
        let mut p = TenantPolicy::default();
        p.throttle.address_allow = vec!["0.0.0.0/0".into()];
        assert_eq!(check(p).unwrap_err().field, "throttle.address_allow");
    }

    #[test]
    fn values_are_normalized() {
        let mut p = TenantPolicy::default();
        p.branding.primary_color = Some("#0B57D0".into());
        p.throttle.address_allow = vec!["192.0.2.7/24".into(), "192.0.2.0/24".into()];
        p.password.expiry_days = Some(0);
        let p = check(p).unwrap();
        assert_eq!(p.branding.primary_color.as_deref(), Some("#0b57d0"));
        assert_eq!(p.throttle.address_allow, ["192.0.2.0/24"]);
        assert_eq!(p.password.expiry_days, None);
    }
}
