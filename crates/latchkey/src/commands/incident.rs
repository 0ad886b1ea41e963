//! `latchkey incident`: incident response in one command (docs/privacy.md#incident-response),
//! the same `latchkey_services::incident` the admin API runs; prints the report as JSON.

use crate::cli::IncidentArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{confirm, print_json};
use latchkey_core::{OsRng, SystemClock};
use latchkey_services::incident::{IncidentPlan, Responder};
use serde_json::json;

pub fn run(ctx: &Context<'_>, args: &IncidentArgs) -> Result<(), CliError> {
    let tenant = ctx.tenant(args.tenant.slug())?;
    let body = args
        .body_file
        .as_ref()
        .map(|path| {
            std::fs::read_to_string(path).map_err(|source| CliError::File {
                flag: "--body-file",
                path: path.clone(),
                source,
            })
        })
        .transpose()?;
    let plan = IncidentPlan {
        users: args.users.clone(),
        reset_passwords: args.reset_passwords,
        rotate_keys: args.rotate_keys,
        notify: args.notify,
        subject: args.subject.clone(),
        body,
    };
    let whom = if plan.users.is_empty() {
        "every user".to_owned()
    } else {
        format!("{} user(s)", plan.users.len())
    };
    confirm(
        args.yes,
        &format!(
            "this signs out {whom} of tenant {:?} and revokes their tokens",
            tenant.slug
        ),
        &tenant.slug,
    )?;
    let keys = ctx.ring()?;
    let responder = Responder {
        db: &ctx.db,
        keys: &keys,
        rng: &OsRng,
        clock: &SystemClock,
    };
    let report = responder
        .run(&tenant, ctx.actor(), &plan)
        .map_err(CliError::Privacy)?;
    print_json(&json!(report));
    Ok(())
}
