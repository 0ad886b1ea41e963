//! `latchkey`: the server and the operator CLI. Exit codes: 0 success, 1 a runtime failure
//! (database unreachable, broken audit chain), 2 bad input (usage, validation, duplicates,
//! unknown names, configuration).

mod admin;
mod cli;
mod demo;
mod keys;
mod output;
mod saml;

use clap::Parser;
use cli::{Cli, Command};
use latchkey_server::{Config, ServerError};
use std::process::ExitCode;

/// A failure with the exit code it deserves.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad input: exit 2.
    #[error("{0}")]
    Input(String),
    /// Something failed at run time: exit 1.
    #[error("{0}")]
    Runtime(String),
}

impl From<latchkey_store::StoreError> for CliError {
    fn from(e: latchkey_store::StoreError) -> Self {
        use latchkey_store::StoreError as E;
        match e {
            E::Invalid(_) | E::Conflict(_) | E::BadReference(_) | E::NotFound { .. } | E::BadUrl(_) => {
                CliError::Input(e.to_string())
            }
            other => CliError::Runtime(other.to_string()),
        }
    }
}

impl From<latchkey_core::ValidationError> for CliError {
    fn from(e: latchkey_core::ValidationError) -> Self {
        CliError::Input(e.to_string())
    }
}

impl From<ServerError> for CliError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Config(c) => CliError::Input(c.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = output::wants_json(&cli.command);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = match e {
                CliError::Input(_) => 2,
                CliError::Runtime(_) => 1,
            };
            if json {
                eprintln!("{}", serde_json::json!({"error": e.to_string()}));
            } else {
                eprintln!("error: {e}");
            }
            ExitCode::from(code)
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    latchkey_server::init_crypto();
    let config = Config::load(cli.config.as_deref()).map_err(|e| CliError::Input(e.to_string()))?;
    match cli.command {
        Command::Serve => {
            latchkey_server::init_logging(&config);
            serve(config)
        }
        Command::Demo => {
            latchkey_server::init_logging(&config);
            demo::run(config)
        }
        command => {
            let mut quiet = config.clone();
            quiet.log = "warn".into();
            latchkey_server::init_logging(&quiet);
            admin::run(&config, command)
        }
    }
}

fn serve(config: Config) -> Result<(), CliError> {
    actix_web::rt::System::new()
        .block_on(latchkey_server::serve(config))
        .map_err(CliError::from)
}
