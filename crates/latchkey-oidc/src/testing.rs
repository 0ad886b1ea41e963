//! Fixtures for the unit tests of this crate.

use latchkey_core::{
    AccessTokenFormat, AuthMethod, Client, ClientId, ClientSettings, ClientType, Clock as _, GrantType,
};

/// A client `c1` of tenant `t` with no URIs or scopes; public ones use `none`, confidential ones
/// `client_secret_basic`.
pub fn client(kind: ClientType) -> Client {
    Client {
        client_id: ClientId("c1".into()),
        tenant_id: "t".into(),
        name: "Portal".into(),
        secret_hash: None,
        previous_secret: None,
        client_type: kind,
        auth_method: if kind == ClientType::Public {
            AuthMethod::None
        } else {
            AuthMethod::ClientSecretBasic
        },
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: vec![],
        access_token_format: AccessTokenFormat::Jwt,
        require_pkce: true,
        introspect_others: false,
        first_party: false,
        jwks_uri: None,
        jwks: None,
        settings: ClientSettings::default(),
        created_at: 0,
        updated_at: 0,
    }
}

/// Tenant `t` (slug `acme`) with the default policy.
pub fn tenant() -> latchkey_core::Tenant {
    latchkey_core::Tenant {
        id: "t".into(),
        slug: "acme".into(),
        display_name: "Acme".into(),
        policy: latchkey_core::TenantPolicy::default(),
        created_at: 0,
        updated_at: 0,
    }
}

/// Active user `u1` of tenant `t`.
pub fn user() -> latchkey_core::User {
    latchkey_core::User {
        id: "u1".into(),
        tenant_id: "t".into(),
        username: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: false,
        display_name: None,
        status: latchkey_core::UserStatus::Active,
        password_hash: None,
        password_changed_at: None,
        sessions_not_before: None,
        created_at: 0,
        updated_at: 0,
    }
}

fn b64(v: &serde_json::Value) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
}

/// Signs nothing: writes `header.claims.test`, so tests can read what would have been signed.
pub struct TestSigner;

impl crate::Signer for TestSigner {
    fn sign(
        &self,
        _t: &latchkey_core::TenantId,
        alg: latchkey_keys::Alg,
        typ: &str,
        claims: &serde_json::Value,
    ) -> Result<String, latchkey_keys::KeyError> {
        let header = serde_json::json!({"alg": alg.as_str(), "typ": typ});
        Ok(format!("{}.{}.test", b64(&header), b64(claims)))
    }

    fn pairwise_salt(
        &self,
        _t: &latchkey_core::TenantId,
    ) -> Result<latchkey_keys::PairwiseSalt, latchkey_keys::KeyError> {
        Ok(latchkey_keys::PairwiseSalt::from_bytes([7; 32]))
    }
}

/// A key ring that can't sign (a broken key row, say).
pub struct FailingSigner;

impl crate::Signer for FailingSigner {
    fn sign(
        &self,
        _t: &latchkey_core::TenantId,
        _alg: latchkey_keys::Alg,
        _typ: &str,
        _claims: &serde_json::Value,
    ) -> Result<String, latchkey_keys::KeyError> {
        Err(latchkey_keys::KeyError::Crypto("test key is broken".into()))
    }

    fn pairwise_salt(
        &self,
        _t: &latchkey_core::TenantId,
    ) -> Result<latchkey_keys::PairwiseSalt, latchkey_keys::KeyError> {
        Err(latchkey_keys::KeyError::Crypto("test key is broken".into()))
    }
}

/// The header and claims of a `TestSigner` token.
pub fn decode(jws: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine as _;
    let part = |i: usize| {
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jws.split('.').nth(i).unwrap())
            .unwrap();
        serde_json::from_slice(&raw).unwrap()
    };
    (part(0), part(1))
}

pub const NOW: i64 = 1_700_000_000_000;
pub const REDIRECT_URI: &str = "https://app.example.com/cb";
/// RFC 7636 Appendix B.
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// A tenant, a client, a user, an in-memory store, a fixed clock and a seeded generator.
pub struct World {
    pub clock: std::sync::Arc<latchkey_core::FixedClock>,
    pub rng: latchkey_core::SeededRng,
    pub store: crate::memory::MemoryOAuth,
    pub tenant: latchkey_core::Tenant,
    pub client: Client,
}

impl World {
    pub fn new() -> Self {
        let clock = std::sync::Arc::new(latchkey_core::FixedClock::new(NOW));
        let store = crate::memory::MemoryOAuth::new(clock.clone());
        store.put_user(user());
        Self {
            clock,
            rng: latchkey_core::SeededRng::new(42),
            store,
            tenant: tenant(),
            client: Client {
                redirect_uris: vec![REDIRECT_URI.into()],
                scopes: ["openid", "email", "offline_access"].map(String::from).to_vec(),
                ..client(ClientType::Public)
            },
        }
    }

    pub fn ctx(&self) -> crate::Ctx<'_> {
        crate::Ctx {
            tenant: &self.tenant,
            issuer: "https://idp.example.com/t/acme",
            clock: &*self.clock,
            rng: &self.rng,
        }
    }

    /// What the authorization endpoint stores for user `u1` (signed in with a password in
    /// browser session `sess`): a grant of `scope` and its PKCE-bound code, returned.
    pub fn authorize(&self, scope: &str) -> String {
        let now = self.clock.now_millis();
        let code = latchkey_core::random_token(&self.rng, 32);
        let amr = vec!["pwd".to_owned()];
        let grant = latchkey_store::Grant {
            id: latchkey_core::random_uuid(&self.rng),
            client_id: self.client.client_id.clone(),
            user_id: "u1".into(),
            session_key: Some("sess".into()),
            scope: scope.into(),
            auth_time: now - 5_000,
            acr: crate::tokens::acr_of(&amr),
            amr,
            created_at: now,
            expires_at: now + 90 * 86_400_000,
            revoked_at: None,
        };
        let new_code = latchkey_store::NewCode {
            code_hash: latchkey_core::sha256_hex(code.as_bytes()),
            redirect_uri: REDIRECT_URI.into(),
            code_challenge: Some(CHALLENGE.into()),
            nonce: Some("n-1".into()),
            expires_at: now + 60_000,
        };
        let ev = latchkey_core::NewAuditEvent::success(
            "user:u1",
            "oauth.authorize",
            "client:c1",
            serde_json::json!({}),
        );
        latchkey_store::OAuthRepo::create_code(&self.store, &self.tenant.id, &grant, &new_code, ev).unwrap();
        code
    }

    /// The token request that redeems `code` with the right redirect URI and `verifier`.
    pub fn code_request(code: &str, verifier: &str) -> crate::token_request::CodeRequest {
        crate::token_request::CodeRequest {
            code: code.into(),
            redirect_uri: Some(REDIRECT_URI.into()),
            code_verifier: Some(verifier.into()),
        }
    }

    /// Redeems a fresh code of `scope` with `TestSigner`.
    pub fn tokens(&self, scope: &str) -> crate::TokenResponse {
        let code = self.authorize(scope);
        let req = Self::code_request(&code, VERIFIER);
        crate::grants::authorization_code::exchange(&self.store, &TestSigner, &self.ctx(), &self.client, &req)
            .unwrap()
    }

    /// The stored token behind an opaque value (a refresh token, say).
    pub fn stored(&self, value: &str) -> latchkey_store::StoredToken {
        let handle = latchkey_core::sha256_hex(value.as_bytes());
        latchkey_store::OAuthRepo::token(&self.store, &self.tenant.id, &handle)
            .unwrap()
            .unwrap()
    }

    /// The audit actions recorded so far, in order.
    pub fn actions(&self) -> Vec<String> {
        self.store
            .events(&self.tenant.id)
            .into_iter()
            .map(|e| e.action)
            .collect()
    }
}
