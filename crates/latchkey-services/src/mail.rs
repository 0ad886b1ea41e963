//! Outgoing mail, webhook calls and Back-Channel Logout tokens (`backchannel`). Handlers queue messages in the `mail_outbox` table (the body
//! sealed under the tenant's data key) inside the transaction that needs them; a background task
//! on every node delivers them, claiming each row first so no two nodes send it twice, retrying
//! with back-off, and dropping the body once it is sent or given up.
//!
//! Without an SMTP URL a development issuer (http on loopback) writes each mail to the log with a
//! warning, so a reset link can be followed; anywhere else mail waits in the outbox.

use crate::outbound::{self, OutboundPolicy};
use crate::{ServiceError, blocking, webhook};
use latchkey_core::{Clock, Rng, TenantId};
use latchkey_keys::{Aad, KeyRing};
use latchkey_store::{Channel, Db, MailOutbox, NewMail, QueuedMail};
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Attempts before a message is given up.
const MAX_ATTEMPTS: i32 = 8;
/// Logout tokens delivered at once (each waits at most its 5 s timeout).
const BACKCHANNEL_PARALLEL: usize = 8;
/// How long a claimed message is left to one node before another may try it.
const LEASE_MS: i64 = 5 * 60_000;

/// The mail settings of the configuration.
pub struct MailSettings<'a> {
    /// The `From` of every mail.
    pub from: &'a str,
    pub smtp_url: Option<&'a str>,
    /// A development issuer (plain http): without SMTP, mail goes to the log.
    pub development: bool,
    /// Where webhook calls may go besides public addresses (`outbound_allow_private`).
    pub outbound: OutboundPolicy,
    /// `LATCHKEY_PUBLIC_URL`: logout tokens name the tenant's issuer under it.
    pub public_url: &'a str,
}

pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    /// No SMTP on a development issuer: mail goes to the log.
    to_log: bool,
    wake: Notify,
    /// Webhook calls go through the outbound guard: no redirects, 10 seconds, public
    /// addresses only unless this allows more.
    outbound: OutboundPolicy,
    public_url: String,
}

impl Mailer {
    pub fn new(settings: &MailSettings<'_>) -> Result<Self, ServiceError> {
        let from: Mailbox = settings.from.parse().map_err(|e| ServiceError::Setting {
            setting: "LATCHKEY_MAIL_FROM",
            message: format!("{e}"),
        })?;
        let transport = match settings.smtp_url {
            Some(url) => Some(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|e| ServiceError::Setting {
                        setting: "LATCHKEY_SMTP_URL",
                        message: e.to_string(),
                    })?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => None,
        };
        let to_log = transport.is_none() && settings.development;
        if to_log {
            tracing::warn!(
                "LATCHKEY_SMTP_URL is not set: mail (password reset links included) is written to this log; set it before real users arrive"
            );
        } else if transport.is_none() {
            tracing::warn!("LATCHKEY_SMTP_URL is not set: mail waits in the outbox until it is");
        }
        Ok(Self {
            transport,
            from,
            to_log,
            wake: Notify::new(),
            outbound: settings.outbound.clone(),
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Asks the sender to look at the outbox now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers due messages, now and whenever woken or `every` passes. Runs for ever.
    pub async fn run(&self, db: Db, keys: Arc<KeyRing>, clock: Arc<dyn Clock>, every: Duration) {
        loop {
            if let Err(e) = self.deliver_due(&db, &keys, &*clock).await {
                tracing::warn!(error = %e, "mail outbox pass failed");
            }
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// One pass over the outbox; returns how many were delivered. Logout tokens go in their own
    /// batch, several at a time, so a flood of them toward a slow receiver (a mass revocation)
    /// never holds up a password-reset mail, and mail never holds them up.
    pub async fn deliver_due(
        &self,
        db: &Db,
        keys: &Arc<KeyRing>,
        clock: &dyn Clock,
    ) -> Result<usize, ServiceError> {
        use futures_util::StreamExt as _;
        let channels: &'static [Channel] = if self.transport.is_none() && !self.to_log {
            &[Channel::Webhook]
        } else {
            &[Channel::Mail, Channel::Webhook]
        };
        let store = db.clone();
        let due = blocking(move || Ok(store.due_mail(channels, 50)?)).await?;
        let mut sent = 0;
        for m in due {
            sent += usize::from(self.attempt(db, keys, clock, m).await?);
        }
        let store = db.clone();
        let logouts = blocking(move || Ok(store.due_mail(&[Channel::BackchannelLogout], 200)?)).await?;
        let outcomes: Vec<Result<bool, ServiceError>> = futures_util::stream::iter(logouts)
            .map(|m| self.attempt(db, keys, clock, m))
            .buffer_unordered(BACKCHANNEL_PARALLEL)
            .collect()
            .await;
        for o in outcomes {
            sent += usize::from(o?);
        }
        Ok(sent)
    }

    /// Claims one message and makes one delivery attempt, recording the outcome; true when it
    /// was delivered (false: another node had it, or it failed and waits for its retry).
    async fn attempt(
        &self,
        db: &Db,
        keys: &Arc<KeyRing>,
        clock: &dyn Clock,
        m: QueuedMail,
    ) -> Result<bool, ServiceError> {
        let lease = clock.now_millis() + LEASE_MS;
        let (store, claim) = (db.clone(), m.clone());
        if !blocking(move || Ok(store.claim_mail(&claim, lease)?)).await? {
            return Ok(false);
        }
        let outcome = if m.channel == Channel::Webhook.as_str() {
            self.post_webhook(db, keys, clock, &m).await
        } else if m.channel == Channel::BackchannelLogout.as_str() {
            crate::backchannel::deliver(&self.outbound, (db, keys, &self.public_url), clock, &m).await
        } else {
            self.send(keys, &m).await
        };
        let (store, id, attempts, now) = (db.clone(), m.id.clone(), m.attempts + 1, clock.now_millis());
        match &outcome {
            Ok(()) => blocking(move || Ok(store.mail_sent(&id)?)).await?,
            Err(e) => {
                let retry = (attempts < MAX_ATTEMPTS && !matches!(e, ServiceError::Undeliverable(_)))
                    .then(|| now + backoff_ms(attempts));
                tracing::warn!(mail = %m.id, channel = %m.channel, attempts, error = %e, given_up = retry.is_none(), "outbox delivery failed");
                let reason = e.to_string();
                blocking(move || Ok(store.mail_failed(&id, &reason, retry)?)).await?;
            }
        }
        Ok(outcome.is_ok())
    }

    /// POSTs a webhook call, signed with the tenant's current webhook secret. Any 2xx is delivery.
    async fn post_webhook(
        &self,
        db: &Db,
        keys: &Arc<KeyRing>,
        clock: &dyn Clock,
        m: &QueuedMail,
    ) -> Result<(), ServiceError> {
        let (db, keys, claim) = (db.clone(), Arc::clone(keys), m.clone());
        let (body, secret) = blocking(move || {
            let t = TenantId(claim.tenant_id.clone());
            Ok((open_body(&keys, &claim)?, webhook::secret(&db, &keys, &t)?))
        })
        .await?;
        let now = clock.now_millis() / 1000;
        // The tenant's policy names the URL (`apply` over the admin API can set it): guarded.
        let checked = outbound::check(&self.outbound, &m.recipient, Duration::from_secs(10)).await?;
        let req = checked
            .client
            .post(checked.url)
            .header("content-type", "application/json")
            .header("x-latchkey-event", &m.subject)
            .header("x-latchkey-delivery", &m.id)
            .header("x-latchkey-signature", webhook::signature(&secret, now, &body))
            .body(body);
        delivered(req).await
    }

    async fn send(&self, keys: &KeyRing, m: &QueuedMail) -> Result<(), ServiceError> {
        let body = open_body(keys, m)?;
        let Some(transport) = &self.transport else {
            tracing::warn!(
                to = %m.recipient,
                subject = %m.subject,
                body = %body,
                "mail written to the log (development: LATCHKEY_SMTP_URL is not set)"
            );
            return Ok(());
        };
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| ServiceError::Mail(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&m.subject)
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| ServiceError::Mail(e.to_string()))?;
        transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| ServiceError::Mail(e.to_string()))
    }
}

/// Sends an outbox call: any 2xx is delivery, anything else is retried.
pub(crate) async fn delivered(req: reqwest::RequestBuilder) -> Result<(), ServiceError> {
    let res = req
        .send()
        .await
        .map_err(|e| ServiceError::Webhook(e.to_string()))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(ServiceError::WebhookStatus(res.status().as_u16()))
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

/// A message on `channel` ready to queue, its body sealed under the tenant's data key. For a
/// webhook call the recipient is the URL and the subject the event name.
pub fn compose(
    keys: &KeyRing,
    rng: &dyn Rng,
    channel: Channel,
    t: &TenantId,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<NewMail, latchkey_keys::KeyError> {
    let id = latchkey_core::random_uuid(rng);
    let body_sealed = keys.seal(t, body_aad(t, &id), body.as_bytes())?;
    Ok(NewMail {
        channel,
        id,
        recipient: recipient.to_owned(),
        subject: subject.to_owned(),
        body_sealed,
    })
}

/// 30 s, 1 min, 2 min, … capped at an hour.
fn backoff_ms(attempts: i32) -> i64 {
    (30_000_i64 << attempts.clamp(1, 10).saturating_sub(1)).min(3_600_000)
}

fn open_body(keys: &KeyRing, m: &QueuedMail) -> Result<String, ServiceError> {
    let t = TenantId(m.tenant_id.clone());
    let sealed = m.body_sealed.as_deref().ok_or(ServiceError::NoBody)?;
    let body = keys.open_sealed(&t, body_aad(&t, &m.id), sealed)?;
    String::from_utf8(body).map_err(|_| ServiceError::BodyNotUtf8)
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
