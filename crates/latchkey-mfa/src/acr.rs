//! Authentication methods (RFC 8176 `amr` values) and the context classes (`acr`) they reach.

/// Password only.
pub const PWD: &str = "urn:latchkey:acr:pwd";
/// A password and a second factor.
pub const MFA: &str = "urn:latchkey:acr:mfa";
/// Phishing-resistant: a passkey (with user verification).
pub const PHR: &str = "urn:latchkey:acr:phr";
/// Weakest first, as discovery advertises them.
pub const ALL: [&str; 3] = [PWD, MFA, PHR];

fn has(amr: &[String], m: &str) -> bool {
    amr.iter().any(|a| a == m)
}

/// The strongest class the methods used reach. A sign-in at a SAML IdP (`ext`) counts as one
/// factor unless the connection trusts the IdP's MFA, which adds `mfa`.
pub fn acr_for(amr: &[String]) -> Option<&'static str> {
    if has(amr, "hwk") || has(amr, "swk") {
        Some(PHR)
    } else if has(amr, "mfa") {
        Some(MFA)
    } else if has(amr, "pwd") || has(amr, "ext") {
        Some(PWD)
    } else {
        None
    }
}

fn rank(acr: &str) -> Option<usize> {
    ALL.iter().position(|a| *a == acr)
}

/// Whether a session with `amr` satisfies a request's `acr_values` (any one of them, OIDC Core
/// §3.1.2.1). Unknown values are ignored; a request naming only unknown values asks for nothing.
pub fn satisfies(amr: &[String], acr_values: &[String]) -> bool {
    let wanted: Vec<usize> = acr_values.iter().filter_map(|a| rank(a)).collect();
    let Some(lowest) = wanted.iter().min() else {
        return true;
    };
    acr_for(amr).and_then(rank).is_some_and(|have| have >= *lowest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn classes_follow_methods() {
        assert_eq!(acr_for(&v(&["pwd"])), Some(PWD));
        assert_eq!(acr_for(&v(&["pwd", "otp", "mfa"])), Some(MFA));
        assert_eq!(acr_for(&v(&["hwk", "user", "mfa"])), Some(PHR));
        assert_eq!(acr_for(&v(&[])), None);
        assert_eq!(acr_for(&v(&["ext"])), Some(PWD));
        assert_eq!(acr_for(&v(&["ext", "mfa"])), Some(MFA));
    }

    #[test]
    fn requests_are_met_by_equal_or_stronger() {
        let pwd = v(&["pwd"]);
        let mfa = v(&["pwd", "otp", "mfa"]);
        assert!(satisfies(&pwd, &v(&[PWD])));
        assert!(!satisfies(&pwd, &v(&[MFA])));
        assert!(satisfies(&pwd, &v(&[MFA, PWD])), "any one of the values");
        assert!(satisfies(&mfa, &v(&[MFA])));
        assert!(!satisfies(&mfa, &v(&[PHR])));
        assert!(
            satisfies(&pwd, &v(&["urn:other"])),
            "unknown values ask for nothing"
        );
        assert!(satisfies(&pwd, &[]));
    }
}
