//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2–3). The request is trusted
//! (signed out without asking) only with a valid `id_token_hint` for the signed-in user; a
//! `post_logout_redirect_uri` must exactly match one the client registered, and the client is
//! known from `client_id` or the hint's `aud`.

use crate::{OAuthError, authorize::Params};
use latchkey_core::Client;
use serde_json::Value;

/// A checked logout request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub client_id: Option<String>,
    /// Where to go afterwards (registered), with `state` to add.
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub ui_locales: Option<String>,
    /// The hint's `sub`, if a valid hint came with the request.
    pub hint_sub: Option<String>,
}

/// The client the request is about: `client_id`, else the verified hint's `aud`.
pub fn client_id<'a>(p: &'a Params, hint: Option<&'a Value>) -> Option<&'a str> {
    p.get("client_id")
        .map(String::as_str)
        .filter(|c| !c.is_empty())
        .or_else(|| hint.and_then(|h| h.get("aud")).and_then(hint_aud))
}

fn hint_aud(aud: &Value) -> Option<&str> {
    match aud {
        Value::String(a) => Some(a),
        Value::Array(list) => list.first().and_then(Value::as_str),
        _ => None,
    }
}

/// Checks the request. `hint` holds the claims of an `id_token_hint` whose signature and issuer
/// the caller verified (expiry tolerated); `client` is the one `client_id` names.
pub fn check_logout_request(
    p: &Params,
    hint: Option<&Value>,
    client: Option<&Client>,
) -> Result<LogoutRequest, OAuthError> {
    if p.contains_key("id_token_hint") && hint.is_none() {
        return Err(OAuthError::invalid_request(
            "id_token_hint is not a valid ID token of this issuer",
        ));
    }
    let named = client_id(p, hint);
    if let (Some(id), Some(h)) = (p.get("client_id"), hint.and_then(|h| h.get("aud")))
        && hint_aud(h) != Some(id.as_str())
    {
        return Err(OAuthError::invalid_request(
            "client_id is not the audience of id_token_hint",
        ));
    }
    if named.is_some() && client.is_none() {
        return Err(OAuthError::invalid_request("the client is not registered"));
    }
    let post = match p.get("post_logout_redirect_uri").filter(|u| !u.is_empty()) {
        None => None,
        Some(uri) => {
            let c = client.ok_or_else(|| {
                OAuthError::invalid_request("post_logout_redirect_uri needs client_id or id_token_hint")
            })?;
            if !c.post_logout_redirect_uris.iter().any(|r| r == uri) {
                return Err(OAuthError::invalid_request(
                    "post_logout_redirect_uri is not registered for this client",
                ));
            }
            Some(uri.clone())
        }
    };
    Ok(LogoutRequest {
        client_id: named.map(str::to_owned),
        post_logout_redirect_uri: post,
        state: p.get("state").cloned(),
        ui_locales: p.get("ui_locales").cloned(),
        hint_sub: hint
            .and_then(|h| h.get("sub"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// The `events` member of every logout token (Back-Channel Logout 1.0 §2.4).
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// The logout token's JWS `typ` (Back-Channel Logout 1.0 §2.4, RFC 8725 §3.11): no ID token
/// validator accepts it as an ID token.
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";
/// How long a logout token is good for: it is made when it is sent, so this covers only the
/// trip and the receiver's clock.
pub const LOGOUT_TOKEN_SECS: i64 = 120;

/// Who a logout token is about: the user, the session, or both.
#[derive(Debug, Clone, Copy)]
pub struct LogoutSubject<'a> {
    pub sub: &'a str,
    pub sid: Option<&'a str>,
}

/// Back-Channel Logout 1.0 §2.4: the logout token's claims. `jti` is the delivery's id, so a
/// retried delivery is recognised as the same token; never a `nonce`.
pub fn logout_token_claims(
    issuer: &str,
    client_id: &str,
    who: LogoutSubject<'_>,
    jti: &str,
    now_secs: i64,
) -> Value {
    let mut claims = serde_json::json!({
        "iss": issuer,
        "aud": client_id,
        "iat": now_secs,
        "exp": now_secs + LOGOUT_TOKEN_SECS,
        "jti": jti,
        "sub": who.sub,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    if let (Some(sid), Some(o)) = (who.sid, claims.as_object_mut()) {
        o.insert("sid".into(), Value::String(sid.to_owned()));
    }
    claims
}

/// Front-Channel Logout 1.0 §2: the URI the logout page loads in an iframe, with `iss` and
/// `sid` when the client asked for them (and the session has a `sid`).
pub fn frontchannel_url(client: &Client, issuer: &str, sid: Option<&str>) -> Option<String> {
    let uri = client.settings.frontchannel_logout_uri.as_deref()?;
    let params: Vec<(&str, String)> = match sid {
        Some(sid) if client.settings.frontchannel_logout_session_required => {
            vec![("iss", issuer.to_owned()), ("sid", sid.to_owned())]
        }
        _ => Vec::new(),
    };
    Some(crate::authorize::query_url(uri, &params))
}

/// Where the browser goes after signing out: the registered URI with `state`.
pub fn after_logout_url(req: &LogoutRequest) -> Option<String> {
    let uri = req.post_logout_redirect_uri.as_ref()?;
    let params: Vec<(&str, String)> = req.state.iter().map(|s| ("state", s.clone())).collect();
    Some(crate::authorize::query_url(uri, &params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::ClientType;
    use serde_json::json;

    fn client() -> Client {
        Client {
            post_logout_redirect_uris: vec!["https://app/bye".into()],
            ..crate::testing::client(ClientType::Public)
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn logout_tokens_name_the_event_and_never_a_nonce() {
        let who = LogoutSubject {
            sub: "u1",
            sid: Some("s1"),
        };
        let c = logout_token_claims("https://idp/t/acme", "c1", who, "j1", 1_000);
        assert_eq!(c["iss"], "https://idp/t/acme");
        assert_eq!(c["aud"], "c1");
        assert_eq!((c["iat"].as_i64(), c["exp"].as_i64()), (Some(1_000), Some(1_120)));
        assert_eq!(
            (c["sub"].as_str(), c["sid"].as_str(), c["jti"].as_str()),
            (Some("u1"), Some("s1"), Some("j1"))
        );
        assert_eq!(c["events"][BACKCHANNEL_LOGOUT_EVENT], json!({}));
        assert!(c.get("nonce").is_none());
        let no_session = logout_token_claims("i", "c1", LogoutSubject { sub: "u1", sid: None }, "j2", 1);
        assert!(no_session.get("sid").is_none());
    }

    #[test]
    fn frontchannel_urls_carry_iss_and_sid_only_when_asked() {
        let mut c = client();
        assert_eq!(frontchannel_url(&c, "https://idp/t/acme", Some("s1")), None);
        c.settings.frontchannel_logout_uri = Some("https://app/fc?x=1".into());
        assert_eq!(
            frontchannel_url(&c, "https://idp/t/acme", Some("s1")).unwrap(),
            "https://app/fc?x=1"
        );
        c.settings.frontchannel_logout_session_required = true;
        assert_eq!(
            frontchannel_url(&c, "https://idp/t/acme", Some("s1")).unwrap(),
            "https://app/fc?x=1&iss=https%3A%2F%2Fidp%2Ft%2Facme&sid=s1"
        );
    }

    #[test]
    fn exact_post_logout_uri_and_state() {
        let c = client();
        let r = check_logout_request(
            &p(&[
                ("client_id", "c1"),
                ("post_logout_redirect_uri", "https://app/bye"),
                ("state", "x y"),
            ]),
            None,
            Some(&c),
        )
        .unwrap();
        assert_eq!(after_logout_url(&r).unwrap(), "https://app/bye?state=x+y");
        for bad in [
            "https://app/bye/",
            "https://evil/bye",
            "https://app/bye?x=1",
            "https://APP/bye",
        ] {
            assert!(
                check_logout_request(
                    &p(&[("client_id", "c1"), ("post_logout_redirect_uri", bad)]),
                    None,
                    Some(&c)
                )
                .is_err(),
                "{bad}"
            );
        }
        // Without a client nothing can be checked, so no redirect.
        assert!(
            check_logout_request(&p(&[("post_logout_redirect_uri", "https://app/bye")]), None, None).is_err()
        );
    }

    #[test]
    fn the_hint_names_the_client_and_must_agree() {
        let c = client();
        let hint = json!({"aud": "c1", "sub": "u1"});
        let r = check_logout_request(
            &p(&[
                ("id_token_hint", "x"),
                ("post_logout_redirect_uri", "https://app/bye"),
            ]),
            Some(&hint),
            Some(&c),
        )
        .unwrap();
        assert_eq!(r.hint_sub.as_deref(), Some("u1"));
        assert_eq!(client_id(&p(&[]), Some(&hint)), Some("c1"));
        assert!(
            check_logout_request(
                &p(&[("id_token_hint", "x"), ("client_id", "c2")]),
                Some(&hint),
                Some(&c)
            )
            .is_err()
        );
        assert!(check_logout_request(&p(&[("id_token_hint", "garbage")]), None, None).is_err());
    }
}
