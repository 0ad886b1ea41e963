//! Outgoing mail. Handlers queue mail in the `mail_outbox` table (its body sealed under the
//! tenant's data key) inside the transaction that needs it; a background task on every node
//! delivers it over SMTP, claiming each row first so no two nodes send it twice, retrying with
//! back-off, and dropping the body once the mail is sent or given up.
//!
//! Without `LATCHKEY_SMTP_URL` a development issuer (http on loopback) writes each mail to the
//! log with a warning, so a reset link can be followed; anywhere else mail waits in the outbox.

use crate::Config;
use crate::errors::blocking;
use crate::state::AppState;
use latchkey_core::TenantId;
use latchkey_keys::Aad;
use latchkey_store::{Channel, MailOutbox, NewMail, QueuedMail};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;
use tokio::sync::Notify;

/// Attempts before a mail is given up.
const MAX_ATTEMPTS: i32 = 8;
/// How long a claimed mail is left to one node before another may try it.
const LEASE_MS: i64 = 5 * 60_000;

pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// No SMTP on a development issuer: mail goes to the log.
    to_log: bool,
    wake: Notify,
    /// Webhook calls: no redirects followed, a short timeout.
    http: reqwest::Client,
}

impl Mailer {
    pub fn new(config: &Config) -> Result<Self, String> {
        let from: Mailbox = config
            .mail_from
            .parse()
            .map_err(|e| format!("LATCHKEY_MAIL_FROM: {e}"))?;
        let transport = match &config.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url.expose())
                    .map_err(|e| format!("LATCHKEY_SMTP_URL: {e}"))?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => None,
        };
        let to_log = transport.is_none() && config.insecure_public_url();
        if to_log {
            tracing::warn!(
                "LATCHKEY_SMTP_URL is not set: mail (password reset links included) is written to this log; set it before real users arrive"
            );
        } else if transport.is_none() {
            tracing::warn!("LATCHKEY_SMTP_URL is not set: mail waits in the outbox until it is");
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(Self {
            transport,
            from,
            to_log,
            wake: Notify::new(),
            http,
        })
    }

    /// Asks the sender to look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

fn body_aad<'a>(t: &'a TenantId, mail_id: &'a str) -> Aad<'a> {
    Aad {
        tenant: t.as_str(),
        table: "mail_outbox",
        column: "body_sealed",
        row: mail_id,
    }
}

/// A mail ready to queue, its body sealed under the tenant's data key.
pub fn compose(
    state: &AppState,
    t: &TenantId,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<NewMail, latchkey_keys::KeyError> {
    compose_on(state, Channel::Mail, t, recipient, subject, body)
}

/// A message on `channel` ready to queue, its body sealed under the tenant's data key. For a
/// webhook call the recipient is the URL and the subject the event name.
pub fn compose_on(
    state: &AppState,
    channel: Channel,
    t: &TenantId,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<NewMail, latchkey_keys::KeyError> {
    let id = latchkey_core::random_uuid(&*state.rng);
    let body_sealed = state.keys.seal(t, body_aad(t, &id), body.as_bytes())?;
    Ok(NewMail {
        channel,
        id,
        recipient: recipient.to_owned(),
        subject: subject.to_owned(),
        body_sealed,
    })
}

/// Queues a notification on its own (no other change goes with it) and wakes the sender.
pub(crate) async fn queue(
    state: &AppState,
    channel: Channel,
    t: &TenantId,
    recipient: &str,
    subject: &str,
    body: String,
) -> Result<(), crate::errors::AppError> {
    let (st, tid, recipient, subject) = (state.clone(), t.clone(), recipient.to_owned(), subject.to_owned());
    blocking(move || -> Result<(), crate::errors::AppError> {
        let mail = compose_on(&st, channel, &tid, &recipient, &subject, &body)?;
        Ok(st.db.queue_mail(&tid, &mail)?)
    })
    .await?;
    state.mail.wake();
    Ok(())
}

/// Delivers due mail, now and whenever woken or `mail_poll_secs` pass.
pub async fn run_outbox(state: AppState) {
    let every = Duration::from_secs(state.config.mail_poll_secs);
    loop {
        if let Err(e) = deliver_due(&state).await {
            tracing::warn!(error = %e, "mail outbox pass failed");
        }
        tokio::select! {
            () = state.mail.wake.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
    }
}

/// One pass over the outbox (mail and webhooks); returns how many were delivered.
pub async fn deliver_due(state: &AppState) -> Result<usize, String> {
    let mailer = &state.mail;
    let channels: &'static [Channel] = if mailer.transport.is_none() && !mailer.to_log {
        &[Channel::Webhook]
    } else {
        &[Channel::Mail, Channel::Webhook]
    };
    let db = state.db.clone();
    let due = blocking(move || db.due_mail(channels, 50))
        .await
        .map_err(|e| e.to_string())?;
    let mut sent = 0;
    for m in due {
        let lease = state.clock.now_millis() + LEASE_MS;
        let (db, claim) = (state.db.clone(), m.clone());
        let claimed = blocking(move || db.claim_mail(&claim, lease))
            .await
            .map_err(|e| e.to_string())?;
        if !claimed {
            continue;
        }
        let outcome = if m.channel == Channel::Webhook.as_str() {
            post_webhook(state, &m).await
        } else {
            send(state, &m).await
        };
        let (db, id, attempts, now) = (
            state.db.clone(),
            m.id.clone(),
            m.attempts + 1,
            state.clock.now_millis(),
        );
        let record = match &outcome {
            Ok(()) => blocking(move || db.mail_sent(&id)).await,
            Err(e) => {
                let retry = (attempts < MAX_ATTEMPTS).then(|| now + backoff_ms(attempts));
                tracing::warn!(mail = %m.id, attempts, error = %e, given_up = retry.is_none(), "mail delivery failed");
                let e = e.clone();
                blocking(move || db.mail_failed(&id, &e, retry)).await
            }
        };
        record.map_err(|e| e.to_string())?;
        sent += usize::from(outcome.is_ok());
    }
    Ok(sent)
}

/// 30 s, 1 min, 2 min, … capped at an hour.
fn backoff_ms(attempts: i32) -> i64 {
    (30_000_i64 << attempts.clamp(1, 10).saturating_sub(1)).min(3_600_000)
}

fn open_body(state: &AppState, m: &QueuedMail) -> Result<String, String> {
    let t = TenantId(m.tenant_id.clone());
    let sealed = m.body_sealed.as_deref().ok_or("the message has no body")?;
    let body = state
        .keys
        .open_sealed(&t, body_aad(&t, &m.id), sealed)
        .map_err(|e| e.to_string())?;
    String::from_utf8(body).map_err(|e| e.to_string())
}

/// POSTs a webhook call, signed with the tenant's current webhook secret. Any 2xx is delivery.
async fn post_webhook(state: &AppState, m: &QueuedMail) -> Result<(), String> {
    let (st, claim) = (state.clone(), m.clone());
    let (body, secret) = tokio::task::spawn_blocking(move || -> Result<_, String> {
        let t = TenantId(claim.tenant_id.clone());
        Ok((open_body(&st, &claim)?, crate::risk::webhook_secret(&st, &t)?))
    })
    .await
    .map_err(|e| e.to_string())??;
    let now = state.clock.now_millis() / 1000;
    let res = state
        .mail
        .http
        .post(&m.recipient)
        .header("content-type", "application/json")
        .header("x-latchkey-event", &m.subject)
        .header("x-latchkey-delivery", &m.id)
        .header(
            "x-latchkey-signature",
            crate::risk::webhook_signature(&secret, now, &body),
        )
        .body(body)
        .send()
        .await
        .map_err(|e| format!("webhook: {e}"))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("webhook answered HTTP {}", res.status().as_u16()))
    }
}

async fn send(state: &AppState, m: &QueuedMail) -> Result<(), String> {
    let body = open_body(state, m)?;
    let mailer = &state.mail;
    let Some(transport) = &mailer.transport else {
        tracing::warn!(
            to = %m.recipient,
            subject = %m.subject,
            body = %body,
            "mail written to the log (development: LATCHKEY_SMTP_URL is not set)"
        );
        return Ok(());
    };
    let to: Mailbox = m.recipient.parse().map_err(|e| format!("recipient: {e}"))?;
    let message = Message::builder()
        .from(mailer.from.clone())
        .to(to)
        .subject(&m.subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(body)
        .map_err(|e| e.to_string())?;
    transport.send(message).await.map(drop).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 60_000);
        assert_eq!(backoff_ms(3), 120_000);
        assert_eq!(backoff_ms(20), 3_600_000);
    }
}
