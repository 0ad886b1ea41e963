//! What the operator commands share: the configuration, the open database, who is acting, and
//! the lookups by the names operators type. Every command opens the database and the key ring
//! through here, so they all open them the same way.

use crate::error::CliError;
use latchkey_core::{
    Clock, Group, NewAuditEvent, OsRng, Principal, SystemClock, Tenant, TenantId, User, UserId,
};
use latchkey_keys::KeyRing;
use latchkey_server::Config;
use latchkey_store::{AuditRepo, DatabaseUrl, Db, GroupRepo, PoolOptions, TenantRepo, UserRepo};
use std::sync::Arc;

/// One command's handles: opened once in `main`, borrowed by the command.
pub(crate) struct Context<'a> {
    pub config: &'a Config,
    /// The database of `region`.
    pub db: Db,
    /// The region whose database the command works on (docs/residency.md).
    pub region: String,
    actor: String,
    clock: SystemClock,
}

/// Which region's database a command opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// The home region (`LATCHKEY_DATABASE_URL`).
    Home,
    /// A region named with `--region`.
    Region(String),
    /// The region holding this tenant (`--tenant SLUG`): the home region first, then each of
    /// `LATCHKEY_REGIONS`; the home region when none has it (the command then says so).
    TenantOf(String),
}

impl<'a> Context<'a> {
    /// Opens the database of `target`'s region (two connections: one command at a time) and
    /// brings its schema up to date.
    pub fn open(config: &'a Config, target: &Target) -> Result<Self, CliError> {
        let (region, db) = match target {
            Target::Home => (config.region.clone(), region_db(config, &config.region)?),
            Target::Region(name) => (name.clone(), region_db(config, name)?),
            Target::TenantOf(slug) => holding(config, slug)?,
        };
        // Personal data opens through the key ring (per-user keys, docs/privacy.md#erasure).
        // Without it, commands that touch none still run; those that do say why they can't.
        let db = match latchkey_server::open_keys(config, &db, Arc::new(SystemClock)) {
            Ok(ring) => db.with_vault(Arc::new(latchkey_keys::PersonalVault::new(Arc::new(ring)))),
            Err(e) => {
                tracing::warn!(error = %e, "the key ring did not open: personal data can't be read or written");
                db
            }
        };
        Ok(Context {
            config,
            db,
            region,
            actor: actor(),
            clock: SystemClock,
        })
    }

    /// Region `name`'s database, opened and migrated.
    pub fn region_db(&self, name: &str) -> Result<Db, CliError> {
        region_db(self.config, name)
    }

    /// Every region's name, the home one first.
    pub fn region_names(&self) -> Vec<&str> {
        std::iter::once(self.config.region.as_str())
            .chain(self.config.regions.iter().map(|r| r.name.as_str()))
            .collect()
    }

    /// Who the audit log says acted.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn tenant(&self, slug: &str) -> Result<Tenant, CliError> {
        self.db
            .tenant_by_slug(slug)?
            .ok_or_else(|| CliError::NoTenant(slug.to_owned()))
    }

    /// Opens the key ring for the configured database and master key.
    pub fn ring(&self) -> Result<KeyRing, CliError> {
        latchkey_server::open_keys(self.config, &self.db, Arc::new(SystemClock)).map_err(CliError::KeyRing)
    }

    pub fn issuer(&self, slug: &str) -> String {
        self.config.issuer(slug)
    }

    pub fn now_millis(&self) -> i64 {
        self.clock.now_millis()
    }

    /// A user by username or, failing that, by id.
    pub fn user(&self, tenant: &Tenant, name: &str) -> Result<User, CliError> {
        if let Some(user) = self.db.user_by_username(&tenant.id, name)? {
            return Ok(user);
        }
        self.db
            .user(&tenant.id, &UserId(name.to_owned()))?
            .ok_or_else(|| not_in(tenant, "user", name))
    }

    /// A group by name.
    pub fn group(&self, tenant: &Tenant, name: &str) -> Result<Group, CliError> {
        self.db
            .group_by_name(&tenant.id, name)?
            .ok_or_else(|| not_in(tenant, "group", name))
    }

    /// `--user NAME` or `--group NAME` (clap lets exactly one through).
    pub fn principal(
        &self,
        tenant: &Tenant,
        user: Option<&str>,
        group: Option<&str>,
    ) -> Result<Principal, CliError> {
        match (user, group) {
            (Some(name), _) => Ok(Principal::User(self.user(tenant, name)?.id)),
            (None, Some(name)) => Ok(Principal::Group(self.group(tenant, name)?.id)),
            (None, None) => Err(CliError::BadFlag("give --user or --group".into())),
        }
    }

    /// Reads of personal data by an operator are audit events too.
    pub fn audit_read(
        &self,
        tenant: &TenantId,
        action: &str,
        target: String,
        details: serde_json::Value,
    ) -> Result<(), CliError> {
        self.db.append_audit(
            tenant,
            NewAuditEvent::success(&self.actor, action, target, details),
        )?;
        Ok(())
    }
}

/// The region holding tenant `slug` and its database; the home region when none has it.
fn holding(config: &Config, slug: &str) -> Result<(String, Db), CliError> {
    let home = region_db(config, &config.region)?;
    if config.regions.is_empty() || home.tenant_by_slug(slug)?.is_some() {
        return Ok((config.region.clone(), home));
    }
    for r in &config.regions {
        let db = region_db(config, &r.name)?;
        if db.tenant_by_slug(slug)?.is_some() {
            return Ok((r.name.clone(), db));
        }
    }
    Ok((config.region.clone(), home))
}

/// Region `name`'s database URL and the setting it comes from.
pub(crate) fn region_url(config: &Config, name: &str) -> Result<(&'static str, DatabaseUrl), CliError> {
    let (setting, url) = if name == config.region {
        ("LATCHKEY_DATABASE_URL", config.database_url.as_str())
    } else {
        let r = config
            .regions
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| CliError::NoRegion(name.to_owned()))?;
        ("LATCHKEY_REGIONS", r.database_url.as_str())
    };
    Ok((setting, DatabaseUrl::parse(url).map_err(CliError::DatabaseUrl)?))
}

/// Opens region `name`'s database (the home one is `LATCHKEY_DATABASE_URL`) and migrates it.
fn region_db(config: &Config, name: &str) -> Result<Db, CliError> {
    let (setting, url) = region_url(config, name)?;
    let defaults = PoolOptions::for_url(&url);
    let options = PoolOptions {
        max_size: 2,
        // One wait per connection: no connection is left opening on r2d2's thread at exit.
        wait_slice: defaults.connection_timeout,
        ..defaults
    };
    let db = Db::open(&url, &options, Arc::new(SystemClock), Arc::new(OsRng)).map_err(|source| {
        CliError::DatabaseOpen {
            setting,
            url: url.redacted(),
            source,
        }
    })?;
    db.migrate().map_err(CliError::Migration)?;
    Ok(db)
}

fn not_in(tenant: &Tenant, what: &'static str, name: &str) -> CliError {
    CliError::NotInTenant {
        what,
        name: name.to_owned(),
        tenant: tenant.slug.clone(),
    }
}

/// The operating-system user running the CLI, as `cli:NAME` (or `cli:uidN`).
fn actor() -> String {
    let name = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status
                .lines()
                .find_map(|line| line.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .to_owned();
            Some(format!("uid{uid}"))
        });
    format!("cli:{}", name.unwrap_or_else(|| "unknown".into()))
}
