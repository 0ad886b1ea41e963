//! The records of SAML test sign-ins (issue 22, SAML onboarding), shared by the admin API,
//! which makes and reads them, and the SAML feature, which runs them and stores the outcome.
//! A record lives in the ephemeral store, tenant-scoped, under its public id for
//! [`TEST_TTL`]; the one-time start token is stored hashed beside it.

use crate::state::AppState;
use crate::web::errors::AppError;
use latchkey_core::{SamlConnection, Tenant};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a test may take and its result stays readable after it finished.
pub(crate) const TEST_TTL: Duration = Duration::from_secs(15 * 60);

/// Where a test stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TestStatus {
    /// Made; the window has not come back from the IdP yet.
    Pending,
    /// The IdP's response passed every check a sign-in makes.
    Succeeded,
    /// The response was refused; `refusal` says why.
    Refused,
}

/// A test sign-in and, once finished, its outcome.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct SamlTest {
    /// The test's public handle (not a secret: it only reads the result, with `saml:read`).
    pub id: String,
    /// The connection's name.
    pub connection: String,
    /// The connection's id.
    pub connection_id: String,
    pub status: TestStatus,
    /// The admin credential that made it.
    pub started_by: String,
    pub created_at: i64,
    /// When an unfinished test lapses (Unix ms).
    pub expires_at: i64,
    pub finished_at: Option<i64>,
    /// On success: the decoded assertion.
    pub assertion: Option<AssertionSummary>,
    /// On refusal: why, as the audit event records it, and what to change at the IdP.
    pub refusal: Option<RefusalSummary>,
}

/// What the IdP asserted, and what a sign-in would make of it under the connection's mapping.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct AssertionSummary {
    pub issuer: String,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_index: Option<String>,
    pub authn_context: Option<String>,
    /// When the IdP authenticated the person (Unix ms).
    pub authn_instant: Option<i64>,
    pub issue_instant: Option<i64>,
    /// The server's clock at receipt minus `IssueInstant`, in seconds: positive when the
    /// assertion was issued that long ago (or the IdP's clock is behind); ±90 s are tolerated.
    pub time_skew_seconds: Option<f64>,
    /// Our entity id, which every `AudienceRestriction` named.
    pub audience: String,
    /// The response's `InResponseTo` (this test's AuthnRequest ID).
    pub in_response_to: Option<String>,
    pub response_signed: bool,
    pub assertion_signed: bool,
    pub encrypted: bool,
    /// The IdP certificate whose key verified the signature.
    pub signing_certificate: Option<SigningCertificate>,
    /// Every attribute with its values.
    pub attributes: Vec<AttributeValues>,
    /// The values of the attribute the connection maps to groups.
    pub groups: Vec<String>,
    /// The tenant roles the role map grants for these groups.
    pub roles: Vec<String>,
    /// The tenant groups the group map puts the person in.
    pub mapped_groups: Vec<String>,
    /// The email and display name the mapping reads.
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Whether the IdP says it did multi-factor authentication.
    pub multi_factor: bool,
    /// The user this NameID is linked to already (a sign-in would be theirs), if any.
    pub linked_user: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct SigningCertificate {
    pub subject: String,
    /// SHA-256 of the DER, hex with colons.
    pub sha256: String,
    pub not_after: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct AttributeValues {
    pub name: String,
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub(crate) struct RefusalSummary {
    /// The reason code of the `saml.test` (and a sign-in's `saml.acs`) audit event.
    pub reason: String,
    /// The audit event's detail.
    pub detail: String,
    /// What to change at the IdP.
    pub hint: String,
}

fn record_key(id: &str) -> String {
    format!("saml-test:{id}")
}

fn start_key(token: &str) -> String {
    format!("saml-test-start:{}", latchkey_core::sha256_hex(token.as_bytes()))
}

/// A test id has the shape [`create`] gives (22 base64url characters).
pub(crate) fn is_test_id(id: &str) -> bool {
    id.len() == 22
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Makes a pending test of `connection` for `actor`: the record and the one-time start token.
pub(crate) async fn create(
    state: &AppState,
    tenant: &Tenant,
    connection: &SamlConnection,
    actor: &str,
) -> Result<(SamlTest, String), AppError> {
    let now = state.clock.now_millis();
    let test = SamlTest {
        id: latchkey_core::random_token(&*state.rng, 16),
        connection: connection.name.clone(),
        connection_id: connection.id.clone(),
        status: TestStatus::Pending,
        started_by: actor.to_owned(),
        created_at: now,
        expires_at: now + TEST_TTL.as_millis() as i64,
        finished_at: None,
        assertion: None,
        refusal: None,
    };
    let token = latchkey_core::random_token(&*state.rng, 32);
    let bytes = serde_json::to_vec(&test).map_err(|e| AppError::internal("saml test", e))?;
    let stored = state
        .ephemeral
        .put_once(&tenant.id, &record_key(&test.id), &bytes, TEST_TTL)
        .await?
        && state
            .ephemeral
            .put_once(&tenant.id, &start_key(&token), test.id.as_bytes(), TEST_TTL)
            .await?;
    if !stored {
        return Err(AppError::internal("saml test", "a random id was taken"));
    }
    Ok((test, token))
}

/// The test `id` of `tenant`, while it is kept.
pub(crate) async fn load(state: &AppState, tenant: &Tenant, id: &str) -> Result<Option<SamlTest>, AppError> {
    if !is_test_id(id) {
        return Ok(None);
    }
    let Some(bytes) = state.ephemeral.peek(&tenant.id, &record_key(id)).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| AppError::internal("saml test record", e))
}

/// Takes the start token for good and answers the pending test it starts, if it is one of
/// connection `c`.
pub(crate) async fn take_start(
    state: &AppState,
    tenant: &Tenant,
    c: &SamlConnection,
    token: &str,
) -> Result<Option<SamlTest>, AppError> {
    let Some(id) = state.ephemeral.take(&tenant.id, &start_key(token)).await? else {
        return Ok(None);
    };
    Ok(load(state, tenant, &String::from_utf8_lossy(&id))
        .await?
        .filter(|x| x.connection_id == c.id && x.status == TestStatus::Pending))
}

/// Records the outcome of test `id` of connection `c`, if its record is still kept.
pub(crate) async fn save_outcome(
    state: &AppState,
    tenant: &Tenant,
    c: &SamlConnection,
    id: &str,
    outcome: Result<AssertionSummary, RefusalSummary>,
) -> Result<(), AppError> {
    let Some(mut test) = load(state, tenant, id).await?.filter(|x| x.connection_id == c.id) else {
        return Ok(());
    };
    test.finished_at = Some(state.clock.now_millis());
    match outcome {
        Ok(a) => {
            test.status = TestStatus::Succeeded;
            test.assertion = Some(a);
        }
        Err(r) => {
            test.status = TestStatus::Refused;
            test.refusal = Some(r);
        }
    }
    let bytes = serde_json::to_vec(&test).map_err(|e| AppError::internal("saml test", e))?;
    state
        .ephemeral
        .replace(&tenant.id, &record_key(id), &bytes, TEST_TTL)
        .await?;
    Ok(())
}
