//! `latchkey migrate`: opening the database applies pending migrations; this says it did.

use crate::context::Context;

pub fn run(ctx: &Context<'_>) {
    println!("database schema is up to date ({})", ctx.db.url().redacted());
}
