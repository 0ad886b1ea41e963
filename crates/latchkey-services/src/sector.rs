//! Sector identifier URIs (OIDC Registration §2, Core §8.1): a pairwise client's
//! `sector_identifier_uri` names a JSON array of URLs that must hold every redirect URI of the
//! client, so the sector's host vouches for the clients that share its pairwise subjects. It
//! is fetched when a client gets one or its redirect URIs change, through the outbound guard,
//! before the store is called; the store's own checks stay pure (the URL's form, the sector).

use crate::ServiceError;
use crate::outbound::{self, OutboundPolicy};
use latchkey_core::{Client, ClientSettings, SubjectType, validate};
use latchkey_store::StoreError;
use std::time::Duration;

/// The largest document read: a list of redirect URIs is small.
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// The most URLs a document may list.
pub const MAX_URLS: usize = 1000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// A sector document found to list these redirect URIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub uri: String,
    pub redirect_uris: Vec<String>,
}

/// The URI to fetch when a client goes from `before` (`None`: a new client) to one with
/// `redirect_uris` and `settings`: its `sector_identifier_uri`, when it is pairwise, has one,
/// and that or its redirect URIs are new. A change of anything else fetches nothing, so a
/// sector host that is down blocks no other edit. (The store refuses a
/// `sector_identifier_uri` on a public client.)
pub fn to_check<'a>(
    before: Option<&Client>,
    redirect_uris: &[String],
    settings: &'a ClientSettings,
) -> Option<&'a str> {
    let uri = settings.sector_identifier_uri.as_deref()?;
    let same = before.is_some_and(|b| {
        b.settings.sector_identifier_uri.as_deref() == Some(uri) && b.redirect_uris == redirect_uris
    });
    (settings.subject_type == SubjectType::Pairwise && !same).then_some(uri)
}

/// Checks the sector document of a client going from `before` to (`redirect_uris`,
/// `settings`) when [`to_check`] says so: the URI's form first (a refusal names it), then
/// [`verify`]. Answers what was verified, for [`still_verified`].
pub async fn verify_change(
    policy: &OutboundPolicy,
    before: Option<&Client>,
    redirect_uris: &[String],
    settings: &ClientSettings,
) -> Result<Option<Verified>, ServiceError> {
    let Some(uri) = to_check(before, redirect_uris, settings) else {
        return Ok(None);
    };
    validate::logout_uri("sector_identifier_uri", uri).map_err(StoreError::from)?;
    verify(policy, uri, redirect_uris).await?;
    Ok(Some(Verified {
        uri: uri.to_owned(),
        redirect_uris: redirect_uris.to_vec(),
    }))
}

/// Inside the store's update of `before` into `after`: refuses a change whose sector document
/// would need fetching but was not fetched for exactly this URI and these redirect URIs (the
/// client changed between the check and the update).
pub fn still_verified(
    before: &Client,
    after: &Client,
    verified: Option<&Verified>,
) -> Result<(), StoreError> {
    let Some(uri) = to_check(Some(before), &after.redirect_uris, &after.settings) else {
        return Ok(());
    };
    if verified.is_some_and(|v| v.uri == uri && v.redirect_uris == after.redirect_uris) {
        Ok(())
    } else {
        Err(StoreError::Stale(format!(
            "client {} changed while its sector_identifier_uri was checked; try again",
            after.client_id
        )))
    }
}

/// Fetches `uri` through the guard (`policy`, 10 s, 64 KiB, no redirects) and checks that it
/// lists every one of `redirect_uris`.
pub async fn verify(
    policy: &OutboundPolicy,
    uri: &str,
    redirect_uris: &[String],
) -> Result<(), ServiceError> {
    let body = outbound::get(policy, uri, TIMEOUT, MAX_DOCUMENT_BYTES).await?;
    check_document(uri, &body, redirect_uris)
}

/// OIDC Registration §2: the document is a JSON array of URL strings that includes every
/// redirect URI, compared exactly as redirect URIs are.
pub fn check_document(uri: &str, body: &[u8], redirect_uris: &[String]) -> Result<(), ServiceError> {
    let refused = |problem: String| ServiceError::SectorIdentifier {
        uri: uri.to_owned(),
        problem,
    };
    let listed: Vec<String> = serde_json::from_slice(body)
        .map_err(|_| refused("the document is not a JSON array of URLs".into()))?;
    if listed.len() > MAX_URLS {
        return Err(refused(format!("the document lists more than {MAX_URLS} URLs")));
    }
    match redirect_uris.iter().find(|r| !listed.contains(r)) {
        Some(missing) => Err(refused(format!(
            "the document does not list the redirect URI {missing}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uris(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_document_must_list_every_redirect_uri_exactly() {
        let ours = uris(&["https://a.example.com/cb", "https://b.example.com/cb"]);
        let doc = br#"["https://a.example.com/cb", "https://b.example.com/cb", "https://c.example.com/x"]"#;
        assert!(check_document("https://s.example.com/s.json", doc, &ours).is_ok());
        let short = br#"["https://a.example.com/cb", "https://b.example.com/cb/"]"#;
        let err = check_document("https://s.example.com/s.json", short, &ours).unwrap_err();
        assert!(err.to_string().contains("https://b.example.com/cb"), "{err}");
        for bad in [&b"{}"[..], b"[1, 2]", b"not json", b""] {
            assert!(check_document("u", bad, &ours).is_err());
        }
    }

    #[test]
    fn only_a_new_uri_or_new_redirect_uris_are_fetched() {
        let mut before: Client = serde_json::from_value(serde_json::json!({
            "client_id": "c1", "tenant_id": "t", "name": "Portal", "client_type": "confidential",
            "auth_method": "client_secret_basic", "redirect_uris": ["https://a.test/cb"],
            "post_logout_redirect_uris": [], "grant_types": ["authorization_code"],
            "scopes": ["openid"], "access_token_format": "jwt", "require_pkce": true,
            "introspect_others": false, "first_party": false, "jwks_uri": null, "jwks": null,
            "created_at": 0, "updated_at": 0
        }))
        .unwrap();
        let check =
            |b: Option<&Client>, a: &Client| to_check(b, &a.redirect_uris, &a.settings).map(str::to_owned);
        assert_eq!(
            check(None, &before),
            None,
            "no sector_identifier_uri, nothing to fetch"
        );
        before.settings.sector_identifier_uri = Some("https://s.test/s.json".into());
        assert_eq!(check(None, &before), None, "a public client has no sector");
        before.settings.subject_type = SubjectType::Pairwise;
        assert_eq!(check(None, &before).as_deref(), Some("https://s.test/s.json"));
        let mut renamed = before.clone();
        renamed.name = "Renamed".into();
        assert_eq!(check(Some(&before), &renamed), None);
        assert!(still_verified(&before, &renamed, None).is_ok());
        let mut moved = before.clone();
        moved.redirect_uris.push("https://b.test/cb".into());
        assert_eq!(
            check(Some(&before), &moved).as_deref(),
            Some("https://s.test/s.json")
        );
        let verified = Verified {
            uri: "https://s.test/s.json".into(),
            redirect_uris: moved.redirect_uris.clone(),
        };
        assert!(still_verified(&before, &moved, Some(&verified)).is_ok());
        assert!(still_verified(&before, &moved, None).is_err(), "not fetched");
        let mut moved_again = moved.clone();
        moved_again.redirect_uris.push("https://c.test/cb".into());
        assert!(
            still_verified(&before, &moved_again, Some(&verified)).is_err(),
            "fetched for other redirect URIs"
        );
    }
}
