//! A user's consents and live grants, by client, as the admin API and `latchkey user grants
//! list` show them (one shape for both).

use latchkey_core::{TenantId, UserId};
use latchkey_store::{Db, OAuthRepo, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// One entry per client the user consented to or holds a live grant of: the consent (or
/// `null`) and each grant (`offline` when it has `offline_access`); and how many grants.
pub fn by_client(db: &Db, t: &TenantId, user: &UserId) -> Result<(Vec<Value>, usize), StoreError> {
    let (consents, live) = (db.consents(t, user)?, db.live_grants(t, user)?);
    let mut by_client: BTreeMap<String, Value> = BTreeMap::new();
    for c in consents {
        by_client.insert(
            c.client_id.to_string(),
            json!({"client_id": c.client_id, "consent": {"scope": c.scope, "created_at": c.created_at, "updated_at": c.updated_at}, "grants": []}),
        );
    }
    for g in &live {
        let entry = by_client
            .entry(g.client_id.to_string())
            .or_insert_with(|| json!({"client_id": g.client_id, "consent": null, "grants": []}));
        if let Some(list) = entry["grants"].as_array_mut() {
            list.push(json!({
                "id": g.id, "scope": g.scope, "auth_time": g.auth_time, "acr": g.acr, "amr": g.amr,
                "created_at": g.created_at, "expires_at": g.expires_at,
                "offline": g.scope.split(' ').any(|s| s == "offline_access"),
            }));
        }
    }
    Ok((by_client.into_values().collect(), live.len()))
}
