//! `latchkey serve`: HTTP(S) until SIGTERM/SIGINT, on actix's runtime.

use crate::error::CliError;
use latchkey_server::Config;

pub fn run(config: Config) -> Result<(), CliError> {
    actix_web::rt::System::new()
        .block_on(latchkey_server::serve(config))
        .map_err(CliError::from)
}
