//! `latchkey`: the server and the operator CLI. Exit codes: 0 success, 1 a runtime failure
//! (database unreachable, broken audit chain), 2 bad input (usage, validation, duplicates,
//! unknown names, configuration).
//!
//! This file parses and dispatches; each command group lives in `commands`, what they share in
//! `context`, `output` and `provision`, the server internals they reuse behind `shared`.

mod cli;
mod commands;
mod context;
mod error;
mod output;
#[allow(dead_code)] // read by its tests; the table is the record docs/admin-api.md points to
mod parity;
mod provision;
mod shared;

use clap::{CommandFactory as _, FromArgMatches as _};
use cli::{Cli, Command};
use commands::{
    admin_token, apply, attribute, audit, backup, client, demo, domain, group, incident, invite, keys,
    migrate, oidc_connection, role, saml, serve, tenant, user,
};
use context::{Context, Target};
use error::CliError;
use latchkey_server::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let json = output::wants_json(&cli.command);
    match run(cli, &target(&matches)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

/// The region a command works in: `--region`'s, else the one holding the tenant that
/// `--tenant` (or a tenant command's slug) names, else the home region.
fn target(matches: &clap::ArgMatches) -> Target {
    let mut m = matches;
    loop {
        if let Ok(Some(region)) = m.try_get_one::<String>("region") {
            return Target::Region(region.clone());
        }
        for id in ["tenant", "slug"] {
            if let Ok(Some(slug)) = m.try_get_one::<String>(id) {
                return Target::TenantOf(slug.clone());
            }
        }
        match m.subcommand() {
            Some((_, sub)) => m = sub,
            None => return Target::Home,
        }
    }
}

fn run(cli: Cli, target: &Target) -> Result<(), CliError> {
    latchkey_server::init_crypto();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            latchkey_server::init_logging(&config);
            serve::run(config)
        }
        Command::Demo(args) => {
            latchkey_server::init_logging(&config);
            let portal = demo::run(&config, args.portal_port)?;
            demo::serve(config, portal)
        }
        Command::Healthcheck => serve::healthcheck(&config),
        Command::Backup(args) => operate(&config, target, |ctx| backup::run_backup(ctx, &args)),
        Command::Restore(args) => {
            let mut quiet = config.clone();
            quiet.log = "warn".into();
            latchkey_server::init_logging(&quiet);
            backup::run_restore(&config, &args)
        }
        Command::Migrate => operate(&config, target, |ctx| {
            migrate::run(ctx);
            Ok(())
        }),
        Command::Tenant(cmd) => operate(&config, target, |ctx| tenant::run(ctx, cmd)),
        Command::Client(cmd) => operate(&config, target, |ctx| client::run(ctx, cmd)),
        Command::User(cmd) => operate(&config, target, |ctx| user::run(ctx, cmd)),
        Command::Audit(cmd) => operate(&config, target, |ctx| audit::run(ctx, cmd)),
        Command::AdminToken(cmd) => operate(&config, target, |ctx| admin_token::run(ctx, cmd)),
        Command::AdminRole(cmd) => operate(&config, target, |ctx| admin_token::run_roles(ctx, cmd)),
        Command::SystemToken(cmd) => operate(&config, target, |ctx| admin_token::run_system(ctx, cmd)),
        Command::Keys(cmd) => operate(&config, target, |ctx| keys::run(ctx, cmd)),
        Command::Saml(cmd) => operate(&config, target, |ctx| saml::run(ctx, cmd)),
        Command::OidcConnection(cmd) => operate(&config, target, |ctx| oidc_connection::run(ctx, cmd)),
        Command::Domain(cmd) => operate(&config, target, |ctx| domain::run(ctx, cmd)),
        Command::Role(cmd) => operate(&config, target, |ctx| role::run(ctx, cmd)),
        Command::Group(cmd) => operate(&config, target, |ctx| group::run(ctx, cmd)),
        Command::Attribute(cmd) => operate(&config, target, |ctx| attribute::run(ctx, cmd)),
        Command::Invite(cmd) => operate(&config, target, |ctx| invite::run(ctx, cmd)),
        Command::Apply(args) => operate(&config, target, |ctx| apply::apply(ctx, &args)),
        Command::Export(args) => operate(&config, target, |ctx| apply::export(ctx, &args)),
        Command::Incident(args) => operate(&config, target, |ctx| incident::run(ctx, &args)),
    }
}

/// Runs an operator command: only warnings are logged (the output is the command's), and the
/// database of the command's region is open, migrated, before the command starts.
fn operate(
    config: &Config,
    target: &Target,
    command: impl FnOnce(&Context<'_>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut quiet = config.clone();
    quiet.log = "warn".into();
    latchkey_server::init_logging(&quiet);
    command(&Context::open(config, target)?)
}
