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

use clap::Parser;
use cli::{Cli, Command};
use commands::{
    admin_token, apply, attribute, audit, backup, client, demo, domain, group, incident, invite, keys,
    migrate, oidc_connection, role, saml, serve, tenant, user,
};
use context::Context;
use error::CliError;
use latchkey_server::Config;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = output::wants_json(&cli.command);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(json),
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
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
        Command::Backup(args) => operate(&config, |ctx| backup::run_backup(ctx, &args)),
        Command::Restore(args) => {
            let mut quiet = config.clone();
            quiet.log = "warn".into();
            latchkey_server::init_logging(&quiet);
            backup::run_restore(&config, &args)
        }
        Command::Migrate => operate(&config, |ctx| {
            migrate::run(ctx);
            Ok(())
        }),
        Command::Tenant(cmd) => operate(&config, |ctx| tenant::run(ctx, cmd)),
        Command::Client(cmd) => operate(&config, |ctx| client::run(ctx, cmd)),
        Command::User(cmd) => operate(&config, |ctx| user::run(ctx, cmd)),
        Command::Audit(cmd) => operate(&config, |ctx| audit::run(ctx, cmd)),
        Command::AdminToken(cmd) => operate(&config, |ctx| admin_token::run(ctx, cmd)),
        Command::AdminRole(cmd) => operate(&config, |ctx| admin_token::run_roles(ctx, cmd)),
        Command::SystemToken(cmd) => operate(&config, |ctx| admin_token::run_system(ctx, cmd)),
        Command::Keys(cmd) => operate(&config, |ctx| keys::run(ctx, cmd)),
        Command::Saml(cmd) => operate(&config, |ctx| saml::run(ctx, cmd)),
        Command::OidcConnection(cmd) => operate(&config, |ctx| oidc_connection::run(ctx, cmd)),
        Command::Domain(cmd) => operate(&config, |ctx| domain::run(ctx, cmd)),
        Command::Role(cmd) => operate(&config, |ctx| role::run(ctx, cmd)),
        Command::Group(cmd) => operate(&config, |ctx| group::run(ctx, cmd)),
        Command::Attribute(cmd) => operate(&config, |ctx| attribute::run(ctx, cmd)),
        Command::Invite(cmd) => operate(&config, |ctx| invite::run(ctx, cmd)),
        Command::Apply(args) => operate(&config, |ctx| apply::apply(ctx, &args)),
        Command::Export(args) => operate(&config, |ctx| apply::export(ctx, &args)),
        Command::Incident(args) => operate(&config, |ctx| incident::run(ctx, &args)),
    }
}

/// Runs an operator command: only warnings are logged (the output is the command's), and the
/// database is open, migrated, before the command starts.
fn operate(
    config: &Config,
    command: impl FnOnce(&Context<'_>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut quiet = config.clone();
    quiet.log = "warn".into();
    latchkey_server::init_logging(&quiet);
    command(&Context::open(config)?)
}
