//! What the two kinds of connection (SAML, upstream OpenID Connect) store alike, as one set of
//! queries made for each table: which user a connection's subject signs in as
//! (`saml_identities` keyed by NameID, `oidc_identities` by `sub`; `identities!`), and the
//! refresh leases and versioned deletes of the connection rows (`connections!`).

macro_rules! identities {
    ($module:ident, $table:ident, $subject:ident, $what:literal) => {
        pub(crate) mod $module {
            use crate::schema::$table as tbl;
            use crate::{AnyConnection, Result, StoreError};
            use diesel::prelude::*;
            use latchkey_core::{TenantId, UserId};

            /// The user the subject signs in as.
            pub(crate) fn lookup(
                c: &mut AnyConnection,
                t: &TenantId,
                connection: &str,
                subject: &str,
            ) -> Result<Option<UserId>> {
                Ok(tbl::table
                    .find((t.as_str(), connection, subject))
                    .select(tbl::user_id)
                    .first::<String>(c)
                    .optional()?
                    .map(UserId))
            }

            /// (connection id, subject) of each identity of the user.
            pub(crate) fn of_user(
                c: &mut AnyConnection,
                t: &TenantId,
                user: &UserId,
            ) -> Result<Vec<(String, String)>> {
                Ok(tbl::table
                    .filter(
                        tbl::tenant_id
                            .eq(t.as_str())
                            .and(tbl::user_id.eq(user.as_str())),
                    )
                    .select((tbl::connection_id, tbl::$subject))
                    .order((tbl::connection_id.asc(), tbl::$subject.asc()))
                    .load(c)?)
            }

            pub(crate) fn insert(
                c: &mut AnyConnection,
                t: &TenantId,
                connection: &str,
                subject: &str,
                user: &UserId,
                now: i64,
            ) -> Result<()> {
                diesel::insert_into(tbl::table)
                    .values((
                        tbl::tenant_id.eq(t.as_str()),
                        tbl::connection_id.eq(connection),
                        tbl::$subject.eq(subject),
                        tbl::user_id.eq(user.as_str()),
                        tbl::created_at.eq(now),
                    ))
                    .execute(c)
                    .map_err(|e| match StoreError::from(e) {
                        StoreError::Conflict(_) => StoreError::Conflict(format!(
                            "this {} is already linked to a user of the connection",
                            $what
                        )),
                        other => other,
                    })?;
                Ok(())
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
                t: &TenantId,
                connection: &str,
                subject: &str,
                now: i64,
            ) -> Result<()> {
                diesel::update(tbl::table.find((t.as_str(), connection, subject)))
                    .set(tbl::last_login_at.eq(Some(now)))
                    .execute(c)?;
                Ok(())
            }
        }
    };
}

identities!(saml, saml_identities, name_id, "NameID");
identities!(oidc, oidc_identities, subject, "subject");

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
