//! Password reset tokens and the mail outbox. A reset request stores the token's SHA-256 and
//! queues its mail in one audited transaction, so a mail exists exactly when its token does. The
//! outbox is delivered by a background task on any node; a row is claimed before sending so two
//! nodes don't send it twice.

use crate::db::Db;
use crate::schema::{mail_outbox, password_resets};
use crate::users::{profile, write_password};
use crate::{AnyConnection, Result, StoreError};
use diesel::prelude::*;
use latchkey_core::{NewAuditEvent, TenantId, User, UserId};
use serde_json::json;

/// What the outbox carries: mail, or webhook calls (recipient = URL, subject = event name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Mail,
    Webhook,
    /// A Back-Channel Logout token for a client: the recipient is the client id, the subject
    /// the grant whose session ended; the token is made and signed when it is sent.
    BackchannelLogout,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Mail => "mail",
            Channel::Webhook => "webhook",
            Channel::BackchannelLogout => "backchannel_logout",
        }
    }
}

/// A message to queue. The body arrives sealed under the tenant's data key.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub channel: Channel,
    /// Chosen by the caller: the body's seal names it.
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body_sealed: String,
}

/// A mail waiting for delivery.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = mail_outbox)]
pub struct QueuedMail {
    pub id: String,
    pub tenant_id: String,
    pub recipient: String,
    pub subject: String,
    pub body_sealed: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub channel: String,
}

/// A live reset token: whose it is and the browser it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveReset {
    pub user: UserId,
    /// SHA-256 of the requesting browser's binding cookie; `None` for tokens issued before
    /// tokens were bound (they work nowhere).
    pub browser_hash: Option<String>,
}

pub trait ResetRepo {
    /// Stores a reset token (`hashes.0`, its SHA-256) for the user, bound to the requesting
    /// browser (`hashes.1`, the SHA-256 of its binding cookie), and queues the mail that carries it, with the audit
    /// event, in one transaction. Spent and expired tokens of the tenant older than a day are
    /// purged on the way.
    fn request_password_reset(
        &self,
        t: &TenantId,
        user: &UserId,
        hashes: (&str, &str),
        expires_at: i64,
        mail: &NewMail,
    ) -> Result<()>;
    /// The user and browser binding of a live token (unspent, unexpired).
    fn password_reset_user(&self, t: &TenantId, token_hash: &str) -> Result<Option<LiveReset>>;
    /// Spends the token and sets the new password, spending every other open token of the user.
    /// `NotFound` when the token is unknown, spent (also by a concurrent request) or expired.
    fn complete_password_reset(&self, t: &TenantId, token_hash: &str, password_hash: &str) -> Result<User>;
}

pub trait MailOutbox {
    /// Queues a notification of tenant `t` (no other change goes with it).
    fn queue_mail(&self, t: &TenantId, mail: &NewMail) -> Result<()>;
    /// Messages of any tenant on one of `channels` due for a delivery attempt, oldest first.
    fn due_mail(&self, channels: &[Channel], limit: i64) -> Result<Vec<QueuedMail>>;
    /// Claims a mail for one attempt until `lease_until`; false when another node claimed it.
    fn claim_mail(&self, m: &QueuedMail, lease_until: i64) -> Result<bool>;
    /// Records delivery and drops the body.
    fn mail_sent(&self, id: &str) -> Result<()>;
    /// Records a failed attempt: retried at `retry_at`, or given up (body dropped) when `None`.
    fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()>;
}

/// A session that ended and a client that got tokens in it.
#[derive(Debug, Clone, Copy)]
pub struct LogoutNotice<'a> {
    pub client: &'a str,
    pub user: &'a str,
    /// The session store's key; `None` for a grant made outside a browser session.
    pub session_key: Option<&'a str>,
}

/// What a queued Back-Channel Logout notice carries (the outbox row's subject, as JSON): no
/// secret, only the user's id and the session's `sid`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogoutSubject {
    pub user: String,
    pub sid: Option<String>,
}

/// Queues one Back-Channel Logout notice per client and session among `notices` whose client
/// registered a `backchannel_logout_uri`, in the caller's transaction; the token itself is
/// made and signed when it is sent. A notice without a session (an offline grant whose session
/// ended before) names only the user, and is left out for clients that need `sid`. Returns
/// how many.
pub(crate) fn queue_backchannel_logouts(
    c: &mut AnyConnection,
    t: &TenantId,
    notices: &[LogoutNotice<'_>],
    now: i64,
) -> Result<usize> {
    use crate::schema::clients;
    if notices.is_empty() {
        return Ok(0);
    }
    let mut ids: Vec<&str> = notices.iter().map(|n| n.client).collect();
    ids.sort_unstable();
    ids.dedup();
    // Client id → whether it needs `sid` (a notice without a session can't be sent to it).
    let listening: std::collections::HashMap<String, bool> = clients::table
        .filter(clients::tenant_id.eq(t.as_str()))
        .filter(clients::id.eq_any(&ids))
        .select((clients::id, clients::settings))
        .load::<(String, String)>(c)?
        .into_iter()
        .filter_map(|(id, settings)| {
            let s = serde_json::from_str::<latchkey_core::ClientSettings>(&settings).ok()?;
            s.backchannel_logout_uri
                .is_some()
                .then_some((id, s.backchannel_logout_session_required))
        })
        .collect();
    let mut seen = std::collections::HashSet::new();
    let mut queued = 0;
    for n in notices {
        let Some(&needs_sid) = listening.get(n.client) else {
            continue;
        };
        if (needs_sid && n.session_key.is_none()) || !seen.insert((n.client, n.user, n.session_key)) {
            continue;
        }
        let subject = crate::db::to_json(&LogoutSubject {
            user: n.user.to_owned(),
            sid: n.session_key.map(latchkey_core::sid_of),
        });
        let id = latchkey_core::sha256_hex(format!("bcl:{t}:{}:{subject}:{now}", n.client).as_bytes())[..32]
            .to_owned();
        // Two endings of one session in one millisecond make one notice.
        let exists = mail_outbox::table.find(&id).count().get_result::<i64>(c)? > 0;
        if exists {
            continue;
        }
        queued += diesel::insert_into(mail_outbox::table)
            .values((
                mail_outbox::id.eq(&id),
                mail_outbox::channel.eq(Channel::BackchannelLogout.as_str()),
                mail_outbox::tenant_id.eq(t.as_str()),
                mail_outbox::recipient.eq(n.client),
                mail_outbox::subject.eq(&subject),
                mail_outbox::created_at.eq(now),
                mail_outbox::next_attempt_at.eq(now),
            ))
            .execute(c)?;
    }
    Ok(queued)
}

/// Inserts a mail into the outbox within the caller's transaction.
pub(crate) fn insert_mail(c: &mut AnyConnection, t: &TenantId, mail: &NewMail, now: i64) -> Result<()> {
    diesel::insert_into(mail_outbox::table)
        .values((
            mail_outbox::id.eq(&mail.id),
            mail_outbox::channel.eq(mail.channel.as_str()),
            mail_outbox::tenant_id.eq(t.as_str()),
            mail_outbox::recipient.eq(&mail.recipient),
            mail_outbox::subject.eq(&mail.subject),
            mail_outbox::body_sealed.eq(&mail.body_sealed),
            mail_outbox::created_at.eq(now),
            mail_outbox::next_attempt_at.eq(now),
        ))
        .execute(c)?;
    Ok(())
}

impl ResetRepo for Db {
    fn request_password_reset(
        &self,
        t: &TenantId,
        user: &UserId,
        (token_hash, browser_hash): (&str, &str),
        expires_at: i64,
        mail: &NewMail,
    ) -> Result<()> {
        let (now, mail_id) = (self.now(), &mail.id);
        self.audited(t, |c| {
            diesel::delete(
                password_resets::table.filter(
                    password_resets::tenant_id
                        .eq(t.as_str())
                        .and(password_resets::expires_at.lt(now - 86_400_000)),
                ),
            )
            .execute(c)?;
            diesel::insert_into(password_resets::table)
                .values((
                    password_resets::tenant_id.eq(t.as_str()),
                    password_resets::token_hash.eq(token_hash),
                    password_resets::user_id.eq(user.as_str()),
                    password_resets::created_at.eq(now),
                    password_resets::expires_at.eq(expires_at),
                    password_resets::browser_hash.eq(browser_hash),
                ))
                .execute(c)?;
            insert_mail(c, t, mail, now)?;
            let event = NewAuditEvent::success(
                "anonymous",
                "user.password_reset_request",
                format!("user:{user}"),
                json!({"mail": mail_id, "expires_at": expires_at}),
            );
            Ok(((), event))
        })
    }

    fn password_reset_user(&self, t: &TenantId, token_hash: &str) -> Result<Option<LiveReset>> {
        let now = self.now();
        Ok(password_resets::table
            .filter(
                password_resets::tenant_id
                    .eq(t.as_str())
                    .and(password_resets::token_hash.eq(token_hash))
                    .and(password_resets::used_at.is_null())
                    .and(password_resets::expires_at.gt(now)),
            )
            .select((password_resets::user_id, password_resets::browser_hash))
            .first::<(String, Option<String>)>(&mut *self.conn()?)
            .optional()?
            .map(|(user, browser_hash)| LiveReset {
                user: UserId(user),
                browser_hash,
            }))
    }

    fn complete_password_reset(&self, t: &TenantId, token_hash: &str, password_hash: &str) -> Result<User> {
        let now = self.now();
        let vault = self.personal(t)?;
        self.audited(t, |c| {
            let user = live_token_user(c, t, token_hash, now)?.ok_or(StoreError::NotFound {
                what: "live password reset token",
            })?;
            // Spends this token and every other open one of the user: one reset per request.
            diesel::update(
                password_resets::table.filter(
                    password_resets::tenant_id
                        .eq(t.as_str())
                        .and(password_resets::user_id.eq(user.as_str()))
                        .and(password_resets::used_at.is_null()),
                ),
            )
            .set(password_resets::used_at.eq(now))
            .execute(c)?;
            let written = write_password(c, &vault, t, &user, password_hash, now)?;
            let event = NewAuditEvent::success(
                &format!("user:{user}"),
                "user.password_reset",
                format!("user:{user}"),
                json!({
                    "before": profile(&written.before),
                    "after": profile(&written.after),
                    "grants_revoked": written.grants_revoked,
                }),
            );
            Ok((written.after.user, event))
        })
    }
}

/// The user of an unspent, unexpired token. Inside the audited transaction, which holds the
/// tenant's lock, two concurrent resets with one token can't both find it.
fn live_token_user(
    c: &mut AnyConnection,
    t: &TenantId,
    token_hash: &str,
    now: i64,
) -> Result<Option<UserId>> {
    Ok(password_resets::table
        .filter(
            password_resets::tenant_id
                .eq(t.as_str())
                .and(password_resets::token_hash.eq(token_hash))
                .and(password_resets::used_at.is_null())
                .and(password_resets::expires_at.gt(now)),
        )
        .select(password_resets::user_id)
        .first::<String>(c)
        .optional()?
        .map(UserId))
}

impl MailOutbox for Db {
    fn queue_mail(&self, t: &TenantId, mail: &NewMail) -> Result<()> {
        let now = self.now();
        self.write(|c| insert_mail(c, t, mail, now))
    }

    fn due_mail(&self, channels: &[Channel], limit: i64) -> Result<Vec<QueuedMail>> {
        let mut conn = self.conn()?;
        let channels: Vec<&str> = channels.iter().map(|c| c.as_str()).collect();
        Ok(mail_outbox::table
            .filter(
                mail_outbox::sent_at
                    .is_null()
                    .and(mail_outbox::channel.eq_any(channels))
                    .and(mail_outbox::failed_at.is_null())
                    .and(mail_outbox::next_attempt_at.le(self.now())),
            )
            .order(mail_outbox::next_attempt_at.asc())
            .limit(limit)
            .select(QueuedMail::as_select())
            .load(&mut *conn)?)
    }

    fn claim_mail(&self, m: &QueuedMail, lease_until: i64) -> Result<bool> {
        let mut conn = self.conn()?;
        let n = diesel::update(
            mail_outbox::table.filter(
                mail_outbox::id
                    .eq(&m.id)
                    .and(mail_outbox::attempts.eq(m.attempts))
                    .and(mail_outbox::sent_at.is_null())
                    .and(mail_outbox::failed_at.is_null()),
            ),
        )
        .set((
            mail_outbox::attempts.eq(m.attempts + 1),
            mail_outbox::next_attempt_at.eq(lease_until),
        ))
        .execute(&mut *conn)?;
        Ok(n == 1)
    }

    fn mail_sent(&self, id: &str) -> Result<()> {
        let mut conn = self.conn()?;
        diesel::update(mail_outbox::table.filter(mail_outbox::id.eq(id)))
            .set((
                mail_outbox::sent_at.eq(Some(self.now())),
                mail_outbox::body_sealed.eq(None::<String>),
                mail_outbox::last_error.eq(None::<String>),
            ))
            .execute(&mut *conn)?;
        Ok(())
    }

    fn mail_failed(&self, id: &str, error: &str, retry_at: Option<i64>) -> Result<()> {
        let mut conn = self.conn()?;
        let error: String = error.chars().take(500).collect();
        let target = mail_outbox::table.filter(mail_outbox::id.eq(id));
        match retry_at {
            Some(at) => diesel::update(target)
                .set((
                    mail_outbox::next_attempt_at.eq(at),
                    mail_outbox::last_error.eq(Some(error)),
                ))
                .execute(&mut *conn)?,
            None => diesel::update(target)
                .set((
                    mail_outbox::failed_at.eq(Some(self.now())),
                    mail_outbox::body_sealed.eq(None::<String>),
                    mail_outbox::last_error.eq(Some(error)),
                ))
                .execute(&mut *conn)?,
        };
        Ok(())
    }
}
