//! Subject identifiers (OIDC Core §8) and claim minimisation as per-client settings: which `sub`
//! a client is told (`public`: the user's id; `pairwise`: one value per sector, §8.1) and the
//! rule that names a client's sector, plus the shape of a client's claim allow-list. The
//! pairwise value itself is computed in `latchkey-oidc` (`subject`), with the tenant's secret.

use crate::ValidationError;
use serde::{Deserialize, Serialize};

crate::model::wire_enum!(
    /// OIDC Core §8 `subject_type` of a client.
    SubjectType { Public = "public", Pairwise = "pairwise" }
);

#[allow(clippy::derivable_impls)] // the derives are `wire_enum!`'s
impl Default for SubjectType {
    fn default() -> Self {
        Self::Public
    }
}

/// For `skip_serializing_if`: a public client's settings leave the field out, so nodes that
/// predate it keep reading them.
#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference
pub(crate) fn is_public(t: &SubjectType) -> bool {
    *t == SubjectType::Public
}

/// Claims that say who issued a token, to whom, about which session and when: never capped by
/// a client's `allowed_claims`, since relying parties need them to check the token at all.
pub const PROTOCOL_CLAIMS: [&str; 18] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "client_id",
    "scope",
];

/// The most names an allow-list may hold.
pub const MAX_ALLOWED_CLAIMS: usize = 64;

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// The host of `uri`, lower-cased (`url` lower-cases the hosts of http and https already).
fn host_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()?
        .host_str()
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
}

/// OIDC Core §8.1: a pairwise client's sector identifier is the host of its
/// `sector_identifier_uri` when it has one, else the host of its redirect URIs, which must then
/// all be on one host (several hosts without a `sector_identifier_uri` are refused, as the
/// spec says: the sector would be ambiguous).
pub fn sector_identifier(
    redirect_uris: &[String],
    sector_identifier_uri: Option<&str>,
) -> Result<String, ValidationError> {
    if let Some(uri) = sector_identifier_uri {
        return host_of(uri).ok_or_else(|| invalid("sector_identifier_uri", format!("{uri:?} has no host")));
    }
    let mut hosts: Vec<String> = Vec::new();
    for uri in redirect_uris {
        let host = host_of(uri).ok_or_else(|| {
            invalid(
                "sector_identifier_uri",
                format!("redirect URI {uri:?} has no host: a pairwise client with it needs a sector_identifier_uri"),
            )
        })?;
        if !hosts.contains(&host) {
            hosts.push(host);
        }
    }
    match hosts.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(invalid(
            "sector_identifier_uri",
            "a pairwise client needs a redirect URI or a sector_identifier_uri",
        )),
        many => Err(invalid(
            "sector_identifier_uri",
            format!(
                "the redirect URIs are on several hosts ({}): a pairwise client needs a sector_identifier_uri naming its sector (OIDC Core §8.1)",
                many.join(", ")
            ),
        )),
    }
}

/// A client's claim allow-list: at most [`MAX_ALLOWED_CLAIMS`] claim names (letters, digits
/// and `_ . : / -`), each once, none of them a protocol claim (those are always released, so
/// listing one would suggest otherwise).
pub fn check_allowed_claims(names: &[String]) -> Result<(), ValidationError> {
    const FIELD: &str = "allowed_claims";
    if names.len() > MAX_ALLOWED_CLAIMS {
        return Err(invalid(FIELD, format!("at most {MAX_ALLOWED_CLAIMS} claims")));
    }
    for (i, n) in names.iter().enumerate() {
        let ok = (1..=256).contains(&n.len())
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'));
        if !ok {
            return Err(invalid(
                FIELD,
                format!("{n:?} is not a claim name: use 1-256 letters, digits and _ . : / -"),
            ));
        }
        if PROTOCOL_CLAIMS.contains(&n.as_str()) {
            return Err(invalid(
                FIELD,
                format!("{n:?} is a protocol claim, always released: list only the user claims to allow"),
            ));
        }
        if names[..i].contains(n) {
            return Err(invalid(FIELD, format!("{n:?} is listed twice")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_sector_is_the_one_redirect_host_or_the_sector_uris_host() {
        let one_host = uris(&["https://App.Example.com/cb", "https://app.example.com:8443/other"]);
        assert_eq!(sector_identifier(&one_host, None).unwrap(), "app.example.com");
        let two_hosts = uris(&["https://a.example.com/cb", "https://b.example.com/cb"]);
        assert_eq!(
            sector_identifier(&two_hosts, Some("https://sector.example.org/uris.json")).unwrap(),
            "sector.example.org"
        );
        assert_eq!(
            sector_identifier(&uris(&["http://127.0.0.1:8000/cb"]), None).unwrap(),
            "127.0.0.1"
        );
    }

    #[test]
    fn several_hosts_or_none_without_a_sector_uri_are_refused() {
        let two_hosts = uris(&["https://a.example.com/cb", "https://b.example.com/cb"]);
        let err = sector_identifier(&two_hosts, None).unwrap_err();
        assert_eq!(err.field, "sector_identifier_uri");
        assert!(err.message.contains("a.example.com, b.example.com"), "{err}");
        assert!(sector_identifier(&[], None).is_err());
        let native = uris(&["com.example.app:/oauth2redirect"]);
        assert!(
            sector_identifier(&native, None)
                .unwrap_err()
                .message
                .contains("no host")
        );
        assert!(sector_identifier(&native, Some("https://example.com/s.json")).is_ok());
    }

    #[test]
    fn allow_lists_name_user_claims_once() {
        assert!(check_allowed_claims(&uris(&["email", "name", "https://acme.example/org"])).is_ok());
        assert!(check_allowed_claims(&[]).is_ok(), "empty: no user claim at all");
        for bad in [
            vec!["sub"],
            vec!["email", "email"],
            vec!["a b"],
            vec![""],
            vec!["nonce"],
        ] {
            assert!(check_allowed_claims(&uris(&bad)).is_err(), "{bad:?}");
        }
        let many: Vec<String> = (0..65).map(|i| format!("c{i}")).collect();
        assert!(check_allowed_claims(&many).is_err());
    }

    #[test]
    fn public_is_the_default_and_reads_from_the_wire() {
        assert_eq!(SubjectType::default(), SubjectType::Public);
        assert_eq!("pairwise".parse::<SubjectType>().unwrap(), SubjectType::Pairwise);
        assert!("secret".parse::<SubjectType>().is_err());
    }
}
