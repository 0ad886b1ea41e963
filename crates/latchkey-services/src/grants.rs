//! A user's consents and live grants, by client, as the admin API and `latchkey user grants
//! list` show them (one shape for both).

use latchkey_core::{ClientId, TenantId, UnixMillis, UserId};
use latchkey_store::{Db, OAuthRepo, StoreError};
use serde::Serialize;
use std::collections::BTreeMap;

/// What a user consented to for one client, and their live grants with it.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ClientGrants {
    pub client_id: ClientId,
    pub consent: Option<Consent>,
    pub grants: Vec<GrantView>,
}

#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Consent {
    pub scope: String,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// A grant: a refresh-token family.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GrantView {
    pub id: String,
    pub scope: String,
    pub auth_time: UnixMillis,
    pub acr: Option<String>,
    pub amr: Vec<String>,
    pub created_at: UnixMillis,
    pub expires_at: UnixMillis,
    /// It has `offline_access`: it outlives the user's sessions.
    pub offline: bool,
}

/// One entry per client the user consented to or holds a live grant of, by `client_id`; and
/// how many live grants there are.
pub fn by_client(db: &Db, t: &TenantId, user: &UserId) -> Result<(Vec<ClientGrants>, usize), StoreError> {
    let (consents, live) = (db.consents(t, user)?, db.live_grants(t, user)?);
    let mut by_client: BTreeMap<String, ClientGrants> = BTreeMap::new();
    for c in consents {
        by_client.insert(
            c.client_id.to_string(),
            ClientGrants {
                client_id: c.client_id,
                consent: Some(Consent {
                    scope: c.scope,
                    created_at: c.created_at,
                    updated_at: c.updated_at,
                }),
                grants: Vec::new(),
            },
        );
    }
    for g in &live {
        let entry = by_client
            .entry(g.client_id.to_string())
            .or_insert_with(|| ClientGrants {
                client_id: g.client_id.clone(),
                consent: None,
                grants: Vec::new(),
            });
        entry.grants.push(GrantView {
            id: g.id.clone(),
            scope: g.scope.clone(),
            auth_time: g.auth_time,
            acr: g.acr.clone(),
            amr: g.amr.clone(),
            created_at: g.created_at,
            expires_at: g.expires_at,
            offline: g.scope.split(' ').any(|s| s == "offline_access"),
        });
    }
    Ok((by_client.into_values().collect(), live.len()))
}
