//! Passkeys (WebAuthn Level 3) through webauthn-rs: discoverable credentials with user
//! verification required, usable passwordless and as a second factor.
//!
//! Everything crosses this module as JSON: the options for `navigator.credentials.*`, the
//! browser's response, the ceremony state (kept server-side by the caller, taken once) and the
//! stored credential. The RP ID is a domain (never an IP), and the origin is checked by
//! webauthn-rs against the configured public URL (SECURITY-TESTS W2).

use serde_json::Value;
use url::Url;
use webauthn_rs::prelude::{
    AttestationCaListBuilder, AttestedPasskey, AttestedPasskeyRegistration, DiscoverableAuthentication,
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Uuid, Webauthn, WebauthnBuilder, WebauthnError,
};

#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    #[error("passkeys need a domain as relying-party id: {0}")]
    Config(String),
    #[error("the browser's answer is malformed: {0}")]
    Malformed(String),
    /// The ceremony failed: wrong origin or challenge, no user verification, bad signature…
    #[error("the passkey was refused: {0}")]
    Refused(String),
    /// The authenticator's signature counter went backwards: a cloned credential (W4).
    #[error("the passkey's signature counter went backwards")]
    CounterRegression,
}

fn refused(e: WebauthnError) -> PasskeyError {
    match e {
        WebauthnError::CredentialPossibleCompromise => PasskeyError::CounterRegression,
        other => PasskeyError::Refused(other.to_string()),
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Value, PasskeyError> {
    serde_json::to_value(v).map_err(|e| PasskeyError::Malformed(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(v: &str) -> Result<T, PasskeyError> {
    serde_json::from_str(v).map_err(|e| PasskeyError::Malformed(e.to_string()))
}

/// An authenticator model a tenant trusts when it requires attestation (SECURITY-TESTS W8):
/// the model's AAGUID and the CA (PEM) its attestation certificates chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedModel {
    pub aaguid: String,
    pub ca_pem: String,
}

/// The CA list of the trusted models (every AAGUID parses, every CA is a PEM certificate).
fn ca_list(trusted: &[TrustedModel]) -> Result<webauthn_rs::prelude::AttestationCaList, PasskeyError> {
    let mut cas = AttestationCaListBuilder::new();
    for m in trusted {
        let aaguid =
            Uuid::parse_str(&m.aaguid).map_err(|e| PasskeyError::Config(format!("{}: {e}", m.aaguid)))?;
        cas.insert_device_pem(
            m.ca_pem.as_bytes(),
            aaguid,
            m.aaguid.clone(),
            std::collections::BTreeMap::new(),
        )
        .map_err(|e| {
            PasskeyError::Config(format!("{}: the CA is not a PEM certificate ({e:?})", m.aaguid))
        })?;
    }
    Ok(cas.build())
}

/// Checks a trust list before it is saved.
pub fn check_trusted(trusted: &[TrustedModel]) -> Result<(), PasskeyError> {
    ca_list(trusted).map(drop)
}

/// The registration state kept server-side: plain, or checking attestation against a CA list.
#[derive(serde::Serialize, serde::Deserialize)]
enum RegistrationState {
    Plain(PasskeyRegistration),
    Attested(AttestedPasskeyRegistration),
}

/// A stored passkey, with what the account page shows.
#[derive(Debug, Clone)]
pub struct StoredPasskey {
    /// base64url credential id.
    pub id: String,
    /// The credential as webauthn-rs serialises it (public key, counter, flags).
    pub credential: String,
}

/// What an authentication proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// base64url id of the credential used.
    pub id: String,
    /// The credential to store back when its counter or flags moved.
    pub updated: Option<String>,
}

/// The relying party: Latchkey at its public URL.
pub struct RelyingParty {
    webauthn: Webauthn,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl RelyingParty {
    /// `rp_id` must be the host of `origin` (or a parent domain of it).
    pub fn new(rp_id: &str, origin: &Url, name: &str) -> Result<Self, PasskeyError> {
        if rp_id.parse::<std::net::IpAddr>().is_ok() {
            return Err(PasskeyError::Config(format!("{rp_id} is an IP address")));
        }
        let webauthn = WebauthnBuilder::new(rp_id, origin)
            .and_then(|b| b.rp_name(name).build())
            .map_err(|e| PasskeyError::Config(e.to_string()))?;
        Ok(Self { webauthn })
    }

    /// Options for `navigator.credentials.create()` and the state to keep. The user handle is
    /// the user id; the user's existing credentials are excluded, and a discoverable
    /// credential is required (so it can sign in without a username).
    pub fn start_registration(
        &self,
        user_id: &str,
        name: &str,
        display_name: &str,
        existing: &[StoredPasskey],
        trusted: &[TrustedModel],
    ) -> Result<(Value, String), PasskeyError> {
        let handle = Uuid::parse_str(user_id).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        let exclude = existing
            .iter()
            .map(|p| parse::<Passkey>(&p.credential).map(|k| k.cred_id().clone()))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = if trusted.is_empty() {
            let (o, s) = self
                .webauthn
                .start_passkey_registration(handle, name, display_name, Some(exclude))
                .map_err(refused)?;
            (json(&o)?, RegistrationState::Plain(s))
        } else {
            // Attestation required: only the listed models, proven by their CA, may register.
            let (o, s) = self
                .webauthn
                .start_attested_passkey_registration(
                    handle,
                    name,
                    display_name,
                    Some(exclude),
                    ca_list(trusted)?,
                    None,
                )
                .map_err(refused)?;
            (json(&o)?, RegistrationState::Attested(s))
        };
        let mut options = options;
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection") {
            sel["residentKey"] = Value::from("required");
            sel["requireResidentKey"] = Value::from(true);
        }
        // As for plain passkeys: ask for credProtect without making the browser fail when the
        // authenticator lacks it (user verification is required on every use anyway).
        if let Some(ext) = options.pointer_mut("/publicKey/extensions")
            && ext.get("enforceCredentialProtectionPolicy").is_some()
        {
            ext["enforceCredentialProtectionPolicy"] = Value::from(false);
        }
        Ok((options, json(&state)?.to_string()))
    }

    /// Checks the browser's answer against the kept state; returns the credential to store.
    pub fn finish_registration(&self, response: &str, state: &str) -> Result<StoredPasskey, PasskeyError> {
        let response: RegisterPublicKeyCredential = parse(response)?;
        let credential = match parse::<RegistrationState>(state)? {
            RegistrationState::Plain(s) => json(
                &self
                    .webauthn
                    .finish_passkey_registration(&response, &s)
                    .map_err(refused)?,
            )?,
            RegistrationState::Attested(s) => {
                let key: AttestedPasskey = self
                    .webauthn
                    .finish_attested_passkey_registration(&response, &s)
                    .map_err(refused)?;
                json(&key)?
            }
        };
        // Both kinds are stored alike and used as passkeys from then on.
        let key: Passkey =
            serde_json::from_value(credential.clone()).map_err(|e| PasskeyError::Malformed(e.to_string()))?;
        Ok(StoredPasskey {
            id: b64(key.cred_id().as_ref()),
            credential: credential.to_string(),
        })
    }

    /// Options for a sign-in without a username (the authenticator picks the credential).
    pub fn start_discoverable(&self) -> Result<(Value, String), PasskeyError> {
        let (options, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(refused)?;
        Ok((json(&options)?, json(&state)?.to_string()))
    }

    /// The user handle and credential id a discoverable answer names, before verification.
    pub fn identify(&self, response: &str) -> Result<(String, String), PasskeyError> {
        let response: PublicKeyCredential = parse(response)?;
        let (user, cred) = self
            .webauthn
            .identify_discoverable_authentication(&response)
            .map_err(refused)?;
        Ok((user.to_string(), b64(cred)))
    }

    /// Verifies a discoverable answer against the credential `identify` named (found by the
    /// caller among the tenant's credentials of that user).
    pub fn finish_discoverable(
        &self,
        response: &str,
        state: &str,
        credential: &StoredPasskey,
    ) -> Result<Verified, PasskeyError> {
        let response: PublicKeyCredential = parse(response)?;
        let state: DiscoverableAuthentication = parse(state)?;
        let mut key: Passkey = parse(&credential.credential)?;
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&response, state, &key)
            .map_err(refused)?;
        Self::verified(&result, std::slice::from_mut(&mut key))
    }

    /// Options for a second-factor check with one of the user's credentials.
    pub fn start_authentication(
        &self,
        credentials: &[StoredPasskey],
    ) -> Result<(Value, String), PasskeyError> {
        let keys = credentials
            .iter()
            .map(|p| parse::<Passkey>(&p.credential))
            .collect::<Result<Vec<_>, _>>()?;
        let (options, state) = self
            .webauthn
            .start_passkey_authentication(&keys)
            .map_err(refused)?;
        Ok((json(&options)?, json(&state)?.to_string()))
    }

    pub fn finish_authentication(
        &self,
        response: &str,
        state: &str,
        credentials: &[StoredPasskey],
    ) -> Result<Verified, PasskeyError> {
        let response: PublicKeyCredential = parse(response)?;
        let state: PasskeyAuthentication = parse(state)?;
        let mut keys = credentials
            .iter()
            .map(|p| parse::<Passkey>(&p.credential))
            .collect::<Result<Vec<_>, _>>()?;
        let result = self
            .webauthn
            .finish_passkey_authentication(&response, &state)
            .map_err(refused)?;
        Self::verified(&result, &mut keys)
    }

    fn verified(
        result: &webauthn_rs::prelude::AuthenticationResult,
        keys: &mut [Passkey],
    ) -> Result<Verified, PasskeyError> {
        if !result.user_verified() {
            return Err(PasskeyError::Refused("no user verification".into()));
        }
        let id = b64(result.cred_id().as_ref());
        let mut updated = None;
        for k in keys.iter_mut() {
            if k.update_credential(result) == Some(true) {
                updated = Some(json(&*k)?.to_string());
            }
        }
        Ok(Verified { id, updated })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rp_id_is_a_domain_and_registration_asks_for_a_discoverable_verified_key() {
        let origin = Url::parse("http://localhost:8080").unwrap();
        assert!(RelyingParty::new("127.0.0.1", &Url::parse("http://127.0.0.1:8080").unwrap(), "x").is_err());
        assert!(
            RelyingParty::new("example.com", &origin, "x").is_err(),
            "RP id must match the origin"
        );
        let rp = RelyingParty::new("localhost", &origin, "Acme").unwrap();
        let (options, state) = rp
            .start_registration("00000000-0000-4000-8000-000000000001", "alice", "Alice", &[], &[])
            .unwrap();
        let sel = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["residentKey"], "required");
        assert_eq!(sel["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert!(!state.is_empty());
        assert!(matches!(
            rp.finish_registration("{}", &state),
            Err(PasskeyError::Malformed(_))
        ));
        assert_eq!(options["publicKey"]["attestation"], "none", "W8: none by default");
        let bad = [TrustedModel {
            aaguid: "not-a-uuid".into(),
            ca_pem: String::new(),
        }];
        assert!(
            rp.start_registration(
                "00000000-0000-4000-8000-000000000001",
                "alice",
                "Alice",
                &[],
                &bad
            )
            .is_err()
        );
        let trusted = [TrustedModel {
            aaguid: "01020304-0506-0708-0102-030405060708".into(),
            ca_pem: include_str!("test-attestation-ca.pem").into(),
        }];
        let (attested, state) = rp
            .start_registration(
                "00000000-0000-4000-8000-000000000001",
                "alice",
                "Alice",
                &[],
                &trusted,
            )
            .unwrap();
        assert_eq!(
            attested["publicKey"]["attestation"], "direct",
            "W8: attestation when the tenant lists models"
        );
        assert!(state.contains("Attested"));
        assert!(check_trusted(&trusted).is_ok());
        let (auth, _) = rp.start_discoverable().unwrap();
        assert_eq!(auth["publicKey"]["userVerification"], "required");
    }
}
