//! Subject identifiers (OIDC Core §8): the `sub` a client is told about a user. A public client
//! gets the user's id; a pairwise client a value of its sector (§8.1) keyed by the tenant's
//! pairwise salt, so clients of different sectors (or tenants) can't correlate a user, and
//! nobody without the salt can tell which user a value names. Everything inside Latchkey keeps
//! the user's id: stored grants and tokens, sessions, logout notices.

use base64::Engine as _;
use latchkey_core::subject::sector_identifier;
use latchkey_core::{Client, SubjectType};
use latchkey_keys::{KeyError, PairwiseSalt};

/// OIDC Core §8.1: `base64url(HMAC-SHA256(salt, sector ‖ local id))`, each part
/// length-prefixed so no two (sector, id) pairs make the same input. Stable for as long as the
/// salt is (for good), different for every sector, user and tenant.
pub fn pairwise(salt: &PairwiseSalt, sector: &str, local_id: &str) -> String {
    let mut data = b"latchkey-pairwise-v1".to_vec();
    for part in [sector, local_id] {
        data.extend_from_slice(&(part.len() as u64).to_be_bytes());
        data.extend_from_slice(part.as_bytes());
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(salt.hmac_sha256(&data))
}

/// The `sub` client `c` knows user `user_id` by. `salt` is called only for a pairwise client.
/// A stored pairwise client always has a sector (the store checks it); one without is refused
/// rather than given another sector's values.
pub fn subject_for(
    c: &Client,
    user_id: &str,
    salt: impl FnOnce() -> Result<PairwiseSalt, KeyError>,
) -> Result<String, KeyError> {
    match c.settings.subject_type {
        SubjectType::Public => Ok(user_id.to_owned()),
        SubjectType::Pairwise => {
            let sector = sector_identifier(&c.redirect_uris, c.settings.sector_identifier_uri.as_deref())
                .map_err(|e| KeyError::Refused(format!("client {}: {e}", c.client_id)))?;
            Ok(pairwise(&salt()?, &sector, user_id))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::ClientType;

    fn salt(byte: u8) -> PairwiseSalt {
        PairwiseSalt::from_bytes([byte; 32])
    }

    #[test]
    fn pairwise_values_are_stable_per_sector_and_differ_everywhere_else() {
        let s = salt(7);
        let sub = pairwise(&s, "portal.example.com", "u1");
        assert_eq!(sub, pairwise(&s, "portal.example.com", "u1"), "stable");
        assert_eq!(
            sub,
            pairwise(&salt(7), "portal.example.com", "u1"),
            "stable across restarts"
        );
        assert_eq!(sub.len(), 43, "256 bits, base64url");
        let id = "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5";
        assert_ne!(pairwise(&s, "portal.example.com", id), id);
        assert_ne!(sub, pairwise(&s, "other.example.com", "u1"), "another sector");
        assert_ne!(sub, pairwise(&s, "portal.example.com", "u2"), "another user");
        assert_ne!(
            sub,
            pairwise(&salt(8), "portal.example.com", "u1"),
            "another tenant"
        );
        // Moving bytes between the sector and the id makes another input.
        assert_ne!(pairwise(&s, "ab", "c"), pairwise(&s, "a", "bc"));
    }

    #[test]
    fn public_clients_get_the_user_id_and_never_ask_for_the_salt() {
        let c = crate::testing::client(ClientType::Public);
        let sub = subject_for(&c, "u1", || panic!("a public client needs no salt")).unwrap();
        assert_eq!(sub, "u1");
    }

    #[test]
    fn pairwise_clients_of_one_sector_share_values_and_of_two_do_not() {
        let mut a = crate::testing::client(ClientType::Public);
        a.settings.subject_type = SubjectType::Pairwise;
        a.redirect_uris = vec!["https://portal.example.com/cb".into()];
        let mut same_host = a.clone();
        same_host.redirect_uris = vec!["https://portal.example.com:8443/other".into()];
        let mut elsewhere = a.clone();
        elsewhere.redirect_uris = vec!["https://shop.example.net/cb".into()];
        let sub = |c: &Client| subject_for(c, "u1", || Ok(salt(1))).unwrap();
        assert_eq!(sub(&a), sub(&same_host));
        assert_ne!(sub(&a), sub(&elsewhere));
        assert_ne!(sub(&a), "u1");
        let mut by_uri = elsewhere.clone();
        by_uri.settings.sector_identifier_uri = Some("https://portal.example.com/sector.json".into());
        assert_eq!(
            sub(&by_uri),
            sub(&a),
            "the sector_identifier_uri's host is the sector"
        );
        let mut ambiguous = a.clone();
        ambiguous.redirect_uris.push("https://shop.example.net/cb".into());
        assert!(subject_for(&ambiguous, "u1", || Ok(salt(1))).is_err());
    }
}
