//! Finding the account a sign-in name means, and the password service's answers.

use crate::state::AppState;
use crate::web::blocking::Blocking;
use crate::web::errors::AppError;
use latchkey_core::{Tenant, User};
use latchkey_mfa::PasswordError;
use latchkey_store::UserRepo;

/// The user a sign-in name means: a username, else an email address.
pub(crate) async fn find_user(
    state: &AppState,
    tenant: &Tenant,
    name: &str,
) -> Result<Option<User>, AppError> {
    let (tid, name) = (tenant.id.clone(), name.to_owned());
    state
        .store(move |db| match db.user_by_username(&tid, &name)? {
            Some(u) => Ok(Some(u)),
            None if name.contains('@') => db.user_by_email(&tid, &name),
            None => Ok(None),
        })
        .await
}

/// A full hashing queue is a 503 with `Retry-After`, not a failure.
pub(crate) fn hashing_error(e: PasswordError) -> AppError {
    match e {
        PasswordError::Busy => AppError::unavailable("password service"),
        other => AppError::internal("password hashing", other),
    }
}
