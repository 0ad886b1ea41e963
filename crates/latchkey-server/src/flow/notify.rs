//! Notifications queued from a request (a mail to the user, a webhook call): sealed, stored in
//! the outbox, and the sender woken.

use crate::state::AppState;
use crate::web::blocking::blocking;
use crate::web::errors::AppError;
use latchkey_core::TenantId;
use latchkey_store::{Channel, MailOutbox};

/// Queues a notification on its own (no other change goes with it) and wakes the sender.
pub(crate) async fn queue(
    state: &AppState,
    channel: Channel,
    tenant: &TenantId,
    recipient: &str,
    subject: &str,
    body: String,
) -> Result<(), AppError> {
    let (st, tid, recipient, subject) = (
        state.clone(),
        tenant.clone(),
        recipient.to_owned(),
        subject.to_owned(),
    );
    blocking(move || -> Result<(), AppError> {
        let mail =
            latchkey_services::mail::compose(&st.keys, &*st.rng, channel, &tid, &recipient, &subject, &body)?;
        Ok(st.db.queue_mail(&tid, &mail)?)
    })
    .await?;
    state.mail.wake();
    Ok(())
}
