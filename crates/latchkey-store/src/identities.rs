//! What the two kinds of connection (SAML, upstream OpenID Connect) store alike, as one set of
//! queries made for each table: which user a connection's subject signs in as
//! (`saml_identities` keyed by NameID, `oidc_identities` by `sub`; `identities!`), and the
//! refresh leases and versioned deletes of the connection rows (`connections!`).

macro_rules! identities {
    ($module:ident, $table:ident, $subject:ident, $sealed:ident, $what:literal) => {
        /// A subject is personal data (a NameID is often an email address): for a sealed user
        /// the subject column holds a blind index and `$sealed` the subject sealed under the
        /// user's key; rows of users written before sealing keep the plaintext.
        pub(crate) mod $module {
            use crate::schema::$table as tbl;
            use crate::vault::Personal;
            use crate::{AnyConnection, Result, StoreError};
            use diesel::prelude::*;
            use latchkey_core::{TenantId, UserId};

            /// What the subject column may hold for `subject` of `connection`.
            fn candidates(vault: &Personal, connection: &str, subject: &str) -> Vec<String> {
                let mut out = vec![subject.to_owned()];
                out.extend(vault.index(&format!("{}:{connection}", $what), subject));
                out
            }

            fn column() -> String {
                format!("{}.{}", stringify!($table), stringify!($subject))
            }

            /// The user the subject signs in as.
            pub(crate) fn lookup(
                c: &mut AnyConnection,
                vault: &Personal,
                t: &TenantId,
                (connection, subject): (&str, &str),
            ) -> Result<Option<UserId>> {
                Ok(tbl::table
                    .filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::connection_id.eq(connection))
                            .and(tbl::$subject.eq_any(candidates(vault, connection, subject))),
                    )
                    .select(tbl::user_id)
                    .first::<String>(c)
                    .optional()?
                    .map(UserId))
            }

            /// (connection id, subject) of each identity of the user, opened.
            pub(crate) fn of_user(
                c: &mut AnyConnection,
                vault: &Personal,
                t: &TenantId,
                user: &UserId,
            ) -> Result<Vec<(String, String)>> {
                let rows: Vec<(String, String, Option<String>)> = tbl::table
                    .filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::user_id.eq(user.as_str())),
                    )
                    .select((tbl::connection_id, tbl::$subject, tbl::$sealed))
                    .order((tbl::connection_id.asc(), tbl::$subject.asc()))
                    .load(c)?;
                if rows.is_empty() {
                    return Ok(Vec::new());
                }
                let key = crate::users::key_for(c, vault, t, user)?;
                let mut out = Vec::with_capacity(rows.len());
                for (connection, subject, sealed) in rows {
                    let subject = match (sealed, &key) {
                        (Some(sealed), Some(k)) => String::from_utf8(k.open(&column(), &sealed)?)
                            .map_err(|_| StoreError::corrupt(column()))?,
                        (Some(_), None) => continue,
                        (None, _) => subject,
                    };
                    out.push((connection, subject));
                }
                out.sort();
                Ok(out)
            }

            pub(crate) fn insert(
                c: &mut AnyConnection,
                vault: &Personal,
                t: &TenantId,
                (connection, subject): (&str, &str),
                user: &UserId,
                now: i64,
            ) -> Result<()> {
                let (stored, sealed) = match crate::users::key_for(c, vault, t, user)? {
                    Some(k) => (
                        vault
                            .required()?
                            .blind(&format!("{}:{connection}", $what), subject),
                        Some(k.seal(&column(), subject.as_bytes())?),
                    ),
                    None => (subject.to_owned(), None),
                };
                let taken: i64 = tbl::table
                    .filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::connection_id.eq(connection))
                            .and(tbl::$subject.eq_any(candidates(vault, connection, subject))),
                    )
                    .count()
                    .get_result(c)?;
                let conflict = || {
                    StoreError::Conflict(format!(
                        "this {} is already linked to a user of the connection",
                        $what
                    ))
                };
                if taken > 0 {
                    return Err(conflict());
                }
                diesel::insert_into(tbl::table)
                    .values((
                        tbl::tenant_id.eq(t.as_str()),
                        tbl::connection_id.eq(connection),
                        tbl::$subject.eq(stored),
                        tbl::$sealed.eq(sealed),
                        tbl::user_id.eq(user.as_str()),
                        tbl::created_at.eq(now),
                    ))
                    .execute(c)
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => conflict(),
                        other => other,
                    })?;
                Ok(())
            }

            /// Seals the user's identities written before sealing under `key` (see
            /// `Db::seal_plain_users`); returns how many.
            pub(crate) fn seal_plain(
                c: &mut AnyConnection,
                vault: &Personal,
                t: &TenantId,
                (user, key): (&UserId, &dyn crate::UserKey),
            ) -> Result<usize> {
                let rows: Vec<(String, String)> = tbl::table
                    .filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::user_id.eq(user.as_str()))
                            .and(tbl::$sealed.is_null()),
                    )
                    .select((tbl::connection_id, tbl::$subject))
                    .load(c)?;
                let v = vault.required()?;
                for (connection, subject) in &rows {
                    diesel::update(tbl::table.find((t.as_str(), connection.as_str(), subject.as_str())))
                        .set((
                            tbl::$subject.eq(v.blind(&format!("{}:{connection}", $what), subject)),
                            tbl::$sealed.eq(Some(key.seal(&column(), subject.as_bytes())?)),
                        ))
                        .execute(c)?;
                }
                Ok(rows.len())
            }

            /// Whether anyone has signed in through the connection.
            #[allow(dead_code)] // made for each table; used for upstream connections
            pub(crate) fn any(c: &mut AnyConnection, t: &TenantId, connection: &str) -> Result<bool> {
                Ok(diesel::select(diesel::dsl::exists(
                    tbl::table.filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::connection_id.eq(connection)),
                    ),
                ))
                .get_result(c)?)
            }

            /// Records a sign-in of the subject.
            pub(crate) fn seen(
                c: &mut AnyConnection,
                vault: &Personal,
                t: &TenantId,
                (connection, subject): (&str, &str),
                now: i64,
            ) -> Result<()> {
                diesel::update(
                    tbl::table.filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::connection_id.eq(connection))
                            .and(tbl::$subject.eq_any(candidates(vault, connection, subject))),
                    ),
                )
                .set(tbl::last_login_at.eq(Some(now)))
                .execute(c)?;
                Ok(())
            }
        }
    };
}

identities!(saml, saml_identities, name_id, name_id_sealed, "NameID");
identities!(oidc, oidc_identities, subject, subject_sealed, "subject");

/// The refresh leases and versioned deletes of the two connection tables.
macro_rules! connections {
    ($module:ident, $table:ident) => {
        pub(crate) mod $module {
            use crate::schema::$table as tbl;
            use crate::{AnyConnection, Result};
            use diesel::prelude::*;
            use latchkey_core::{TenantId, UnixMillis};

            /// Leases each of the `due` rows (tenant, id, the `next_refresh_at` read) until
            /// `now + lease_ms`, only if nobody moved it since it was read: of two nodes, one
            /// wins each row. Returns the rows won.
            pub(crate) fn claim(
                c: &mut AnyConnection,
                due: Vec<(String, String, Option<i64>)>,
                now: UnixMillis,
                lease_ms: i64,
            ) -> Result<Vec<(TenantId, String)>> {
                let mut claimed = Vec::with_capacity(due.len());
                for (tenant, id, seen) in due {
                    let n = diesel::update(
                        tbl::table
                            .find((tenant.as_str(), id.as_str()))
                            .filter(tbl::next_refresh_at.eq(seen)),
                    )
                    .set(tbl::next_refresh_at.eq(now.saturating_add(lease_ms)))
                    .execute(c)?;
                    if n == 1 {
                        claimed.push((TenantId(tenant), id));
                    }
                }
                Ok(claimed)
            }

            /// Deletes the row; with `if_version`, only that version of it (one statement
            /// checks and deletes, see `ClientRepo::delete_client`). Returns the rows deleted.
            pub(crate) fn delete(
                c: &mut AnyConnection,
                t: &TenantId,
                id: &str,
                if_version: Option<UnixMillis>,
            ) -> Result<usize> {
                let row = tbl::table.find((t.as_str(), id));
                Ok(match if_version {
                    Some(v) => diesel::delete(row.filter(tbl::updated_at.eq(v))).execute(c)?,
                    None => diesel::delete(row).execute(c)?,
                })
            }
        }
    };
}

connections!(saml_rows, saml_connections);
connections!(oidc_rows, oidc_connections);
