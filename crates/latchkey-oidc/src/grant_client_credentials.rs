//! The client credentials grant (RFC 6749 §4.4) with resource indicators (RFC 8707): no user,
//! so no user scopes; unknown scopes are refused (there is nobody to drop them for); the
//! `resource` becomes the audience.

use crate::{ErrorCode, OAuthError, scope};
use latchkey_core::{Client, GrantType};

/// The token's scope and audience.
pub fn check_client_credentials_grant(
    client: &Client,
    requested_scope: Option<&str>,
    resource: Option<&str>,
) -> Result<(String, String), OAuthError> {
    if !client.grant_types.contains(&GrantType::ClientCredentials) {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "this client may not use the client credentials grant",
        ));
    }
    let machine: Vec<String> = client
        .scopes
        .iter()
        .filter(|s| !scope::USER_SCOPES.contains(&s.as_str()))
        .cloned()
        .collect();
    let granted = match requested_scope.filter(|s| !s.is_empty()) {
        None => machine,
        Some(req) => {
            let asked = scope::parse(Some(req))?;
            if let Some(bad) = asked.iter().find(|s| !machine.contains(s)) {
                return Err(OAuthError::invalid_scope(format!(
                    "scope {bad:?} is not available to this client without a user"
                )));
            }
            asked
        }
    };
    let audience = match resource {
        None => client.client_id.to_string(),
        Some(r) => check_resource(r)?,
    };
    Ok((scope::join(&granted), audience))
}

/// RFC 8707 §2: an absolute URI without a fragment.
pub fn check_resource(r: &str) -> Result<String, OAuthError> {
    let ok =
        url::Url::parse(r).is_ok_and(|u| u.fragment().is_none() && !u.cannot_be_a_base()) && r.len() <= 512;
    if ok {
        Ok(r.to_owned())
    } else {
        Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource must be an absolute URI without a fragment",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::{ClientId, ClientType};

    fn client(grants: Vec<GrantType>) -> Client {
        Client {
            client_id: ClientId("svc".into()),
            grant_types: grants,
            scopes: ["openid", "reports.read", "reports.write"]
                .map(String::from)
                .to_vec(),
            ..crate::testing::client(ClientType::Confidential)
        }
    }

    #[test]
    fn machine_scopes_only_and_resource_as_audience() {
        let c = client(vec![GrantType::ClientCredentials]);
        assert_eq!(
            check_client_credentials_grant(&c, None, None).unwrap(),
            ("reports.read reports.write".into(), "svc".into())
        );
        let (s, aud) =
            check_client_credentials_grant(&c, Some("reports.read"), Some("https://api.example.com/"))
                .unwrap();
        assert_eq!(
            (s.as_str(), aud.as_str()),
            ("reports.read", "https://api.example.com/")
        );
        for bad in ["openid", "admin"] {
            let e = check_client_credentials_grant(&c, Some(bad), None).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidScope, "{bad}");
        }
        for bad in ["api", "https://api/#x", "/relative"] {
            let e = check_client_credentials_grant(&c, None, Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidTarget, "{bad}");
        }
        let e = check_client_credentials_grant(&client(vec![GrantType::AuthorizationCode]), None, None)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }
}
