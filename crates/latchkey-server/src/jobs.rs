//! Background work every node runs: the key scheduler (rotation, data-key re-wrap, purge of
//! spent OAuth state, retention), the SAML metadata refresh and the mail/webhook outbox. Each
//! pass claims its work (locks, leases), so several nodes can run it at once.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use latchkey_services::ServiceError;
use latchkey_services::federation::DISCOVERY_RETRY_MS;
use latchkey_services::saml::{METADATA_RETRY_MS, refresh_connection};
use latchkey_store::{SamlRepo, UpstreamRepo};
use std::time::Duration;

/// How often a node reads the change feed: the longest a change made elsewhere goes unseen.
pub const CHANGE_POLL: Duration = Duration::from_millis(250);
/// How long a change id may stay invisible after a higher one (its transaction still open).
const CHANGE_WINDOW: Duration = Duration::from_secs(10);
/// Feed rows older than this are deleted (a node away longer starts with empty caches anyway).
const CHANGE_KEEP_MS: i64 = 3_600_000;

/// Follows the change feed (`changes`, written by triggers with every tenant, client and key
/// change, whoever made it): drops the cached tenant, client or key ring, and reloads the master
/// key when it was replaced, so every node serves a change within `CHANGE_POLL`.
pub(crate) async fn follow_changes(state: AppState) {
    let start = {
        let db = state.db.clone();
        loop {
            let db = db.clone();
            match tokio::task::spawn_blocking(move || db.latest_change()).await {
                Ok(Ok(id)) => break id,
                Ok(Err(e)) => tracing::warn!(error = %e, "reading the change feed failed; retrying"),
                Err(e) => tracing::warn!(error = %e, "reading the change feed panicked; retrying"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    let mut follower = latchkey_store::Follower::new(start, CHANGE_WINDOW);
    let mut every = tokio::time::interval(CHANGE_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned = std::time::Instant::now();
    loop {
        every.tick().await;
        let started = std::time::Instant::now();
        let (db, after) = (state.db.clone(), follower.floor());
        let read = match tokio::task::spawn_blocking(move || db.changes_after(after)).await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => {
                // Caches still expire by their TTLs while the database is away.
                tracing::debug!(error = %e, "reading the change feed failed");
                continue;
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the change feed panicked");
                continue;
            }
        };
        for change in follower.take(read, std::time::Instant::now()) {
            apply_change(&state, &change).await;
        }
        // Everything committed before `started` is applied: cached tokens may be trusted.
        state.tokens.feed_read(started);
        if pruned.elapsed() >= Duration::from_secs(60) {
            pruned = std::time::Instant::now();
            let (db, before) = (state.db.clone(), state.clock.now_millis() - CHANGE_KEEP_MS);
            if let Ok(Err(e)) = tokio::task::spawn_blocking(move || db.prune_changes(before)).await {
                tracing::warn!(error = %e, "pruning the change feed failed");
            }
        }
    }
}

/// Forgets what `change` made stale on this node.
async fn apply_change(state: &AppState, change: &latchkey_store::Change) {
    use latchkey_store::Changed;
    let tenant = latchkey_core::TenantId(change.tenant_id.clone());
    match &change.kind {
        Changed::Tenant => state.tenants.clear(),
        Changed::Client => state
            .clients
            .remove(&(tenant, latchkey_core::ClientId(change.subject.clone()))),
        Changed::Keys => state.keys.invalidate(&tenant),
        Changed::Master => reload_master_key(state).await,
        Changed::Tokens => state.tokens.forget(&tenant, &change.subject),
        Changed::Other(kind) => {
            tracing::debug!(kind, "unknown change kind (a newer node?): dropping every cache");
            state.tenants.clear();
            state.clients.clear();
            state.keys.invalidate_all();
            state.tokens.clear();
        }
    }
}

/// Reads the master key again from its configured source (file or command; an environment
/// variable cannot change under a running process) and takes it if the data is now under it.
async fn reload_master_key(state: &AppState) {
    let s = state.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let (master, _) =
            latchkey_keys::load_master_key(s.config.master_key_input(), &s.config.keys_dir, false)?;
        s.keys.reload_master(master)
    })
    .await;
    match outcome {
        Ok(Ok(true)) => {
            tracing::info!(master_key = %state.keys.master_key_id(), "took the replaced master key");
        }
        Ok(Ok(false)) => {}
        Ok(Err(e)) => {
            tracing::error!(error = %e, "the master key was replaced elsewhere and this node cannot load the new one: give it the new key (file, command or environment) and restart it");
        }
        Err(e) => tracing::error!(error = %e, "reloading the master key panicked"),
    }
}

/// Delivers due mail and webhook calls, now and whenever woken or `mail_poll_secs` pass.
pub(crate) async fn run_outbox(state: AppState) {
    let every = Duration::from_secs(state.config.mail_poll_secs);
    state
        .mail
        .run(state.db.clone(), state.keys.clone(), state.clock.clone(), every)
        .await;
}

/// One pass over the outbox (mail and webhooks); returns how many were delivered.
pub async fn deliver_due(state: &AppState) -> Result<usize, ServiceError> {
    state
        .mail
        .deliver_due(&state.db, &state.keys, &*state.clock)
        .await
}

/// `refresh_connection` for connection `id` of tenant `t`, counted in the metrics.
pub async fn refresh_metadata(
    state: &AppState,
    tenant: &latchkey_core::TenantId,
    id: &str,
) -> Result<(), ServiceError> {
    let (db, tid, cid) = (state.db.clone(), tenant.clone(), id.to_owned());
    let c = tokio::task::spawn_blocking(move || db.saml_connection(&tid, &cid))
        .await
        .map_err(|e| ServiceError::Task(e.to_string()))??
        .ok_or(ServiceError::ConnectionGone)?;
    match refresh_connection(
        &state.db,
        state.keys.clone(),
        state.rng.clone(),
        &state.config.outbound_allow_private,
        &c,
        state.clock.now_millis(),
    )
    .await
    {
        Ok(after) => {
            state.metrics.saml("metadata", "ok");
            if after.idp.certificates != c.idp.certificates {
                // A certificate-change alert may be waiting in the outbox.
                state.mail.wake();
            }
            Ok(())
        }
        Err(why) => {
            state.metrics.saml("metadata", "failed");
            tracing::warn!(connection = %c.name, error = %why, "SAML metadata refresh failed; the last good metadata stays in use");
            Err(why)
        }
    }
}

/// One pass of the metadata scheduler: every due connection, each claimed by one node.
pub(crate) async fn refresh_pass(state: &AppState) -> usize {
    let now = state.clock.now_millis();
    let due = match state
        .store(move |db| db.claim_saml_refreshes(now, METADATA_RETRY_MS, 50))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "claiming SAML metadata refreshes failed");
            return 0;
        }
    };
    let mut done = 0;
    for (t, id) in due {
        if refresh_metadata(state, &t, &id).await.is_ok() {
            done += 1;
        }
    }
    done
}

/// Applies every tenant's retention (audit segments with an anchor, risk histories); a failure
/// for one tenant is logged and the others go on. Returns the events deleted.
pub fn retention_pass(state: &AppState) -> u64 {
    let tenants = match latchkey_store::TenantRepo::list_tenants(&state.db) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "retention: listing tenants failed");
            return 0;
        }
    };
    let mut deleted = 0;
    for t in tenants {
        // Accounts whose owner asked for deletion and whose grace period has run out.
        match latchkey_store::LifecycleRepo::purge_due_deletions(&state.db, &t.id, state.clock.now_millis()) {
            Ok(gone) if !gone.is_empty() => {
                tracing::info!(tenant = %t.slug, users = gone.len(), "deleted accounts whose deletion was due");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "deleting due accounts failed"),
        }
        // Inactive accounts, unused consents, spent invitations and delivered mail.
        match latchkey_services::retention::apply(
            &state.db,
            &state.keys,
            &*state.rng,
            &t,
            state.clock.now_millis(),
        ) {
            Ok(applied) if !applied.is_empty() => {
                tracing::info!(tenant = %t.slug, applied = %serde_json::json!(applied), "retention policy applied");
                if applied.inactive_notified > 0 {
                    state.mail.wake();
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "retention policy failed for tenant"),
        }
        match latchkey_audit::apply_retention(&state.db, &t, state.clock.now_millis()) {
            Ok(r) => {
                deleted += r.audit_events_deleted;
                if r.audit_events_deleted + r.risk_histories_deleted > 0 {
                    tracing::info!(tenant = %t.slug, audit_events = r.audit_events_deleted, risk_histories = r.risk_histories_deleted, "retention applied");
                }
            }
            Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "retention failed for tenant"),
        }
    }
    deleted
}

/// Runs the key-rotation scheduler for every tenant (and purges expired OAuth state, and refreshes
/// SAML metadata), now and
/// then every `key_scheduler_secs`. Safe with several nodes: each transition happens under the tenant's
/// key lock, so only one node makes it.
pub(crate) async fn key_scheduler(state: AppState) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(state.config.key_scheduler_secs));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention = i64::MIN;
    loop {
        every.tick().await;
        // Retention hourly (its cut-offs are in days).
        if state.clock.now_millis().saturating_sub(last_retention) >= 3_600_000 {
            last_retention = state.clock.now_millis();
            let s = state.clone();
            if let Err(e) = actix_web::web::block(move || retention_pass(&s)).await {
                tracing::warn!(error = %e, "retention pass panicked");
            }
        }
        let s = state.clone();
        let outcome = actix_web::web::block(move || -> Result<(), latchkey_keys::KeyError> {
            // Spent and expired codes, tokens and grants go a day after they expire.
            match latchkey_store::OAuthRepo::purge_expired_oauth(&s.db) {
                Ok(0) => {}
                Ok(n) => tracing::info!(rows = n, "purged expired OAuth state"),
                Err(e) => tracing::warn!(error = %e, "purging expired OAuth state failed"),
            }
            for t in latchkey_store::TenantRepo::list_tenants(&s.db)? {
                // An unfinished data-key rotation moves on by one batch per pass.
                if s.db.data_keys(&t.id).is_ok_and(|d| d.len() > 1)
                    && let Err(e) = s.keys.rotate_dek(&t.id, "system:key-scheduler", 100, Some(1))
                {
                    tracing::warn!(tenant = %t.slug, error = %e, "continuing a data-key rotation failed");
                }
                match s.keys.tick(&t.id, &t.policy.keys, "system:key-scheduler") {
                    Ok(report) if !report.is_empty() => {
                        tracing::info!(tenant = %t.slug, report = %serde_json::json!(report), "signing keys rotated");
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(tenant = %t.slug, error = %e, "key scheduler failed for tenant"),
                }
            }
            Ok(())
        })
        .await;
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "key scheduler pass failed"),
            Err(e) => tracing::warn!(error = %e, "key scheduler pass panicked"),
        }
        // SAML metadata fetched from URLs, each due connection claimed by one node.
        refresh_pass(&state).await;
        // Upstream OpenID Connect discovery and keys, likewise.
        discovery_pass(&state).await;
    }
}

/// One pass of the discovery scheduler: every due upstream connection, each claimed by one
/// node; a failure keeps the last good discovery (logged here, recorded by the service).
pub(crate) async fn discovery_pass(state: &AppState) -> usize {
    let now = state.clock.now_millis();
    let due = match state
        .store(move |db| db.claim_oidc_refreshes(now, DISCOVERY_RETRY_MS, 50))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(error = %e, "claiming OpenID Connect discovery refreshes failed");
            return 0;
        }
    };
    let mut done = 0;
    for (t, id) in due {
        let (tid, cid) = (t.clone(), id.clone());
        let Ok(Some(c)) = state.store(move |db| db.oidc_connection(&tid, &cid)).await else {
            continue;
        };
        match latchkey_services::federation::refresh(&state.db, &state.config.outbound_allow_private, &c, now)
            .await
        {
            Ok(_) => {
                state.metrics.federation("discovery", "ok");
                done += 1;
            }
            Err(why) => {
                state.metrics.federation("discovery", "failed");
                tracing::warn!(connection = %c.name, error = %why, "OpenID Connect discovery failed; the last good one stays in use");
            }
        }
    }
    done
}
