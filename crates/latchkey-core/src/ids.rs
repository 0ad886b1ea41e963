//! Typed identifiers, so a user id can't be passed where a tenant id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// Derived `Eq`, `Ord` and `Hash` are those of the string, so maps keyed by the id can
        /// be looked up by `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }
    };
}

id_type!(
    /// A tenant's internal id (random UUID). The public handle is its slug.
    TenantId
);
impl TenantId {
    /// The id of the installation's own audit chain (system credentials and their calls); no
    /// tenant has it, since tenant ids are UUIDs.
    pub const SYSTEM: &'static str = "system";

    pub fn system() -> Self {
        Self(Self::SYSTEM.to_owned())
    }
}

id_type!(
    /// A user's id; also the `sub` the OIDC issuer hands out.
    UserId
);
id_type!(
    /// A role's id.
    RoleId
);
id_type!(
    /// An OAuth `client_id` (RFC 6749 §2.2), random and unique.
    ClientId
);
id_type!(
    /// A group's id.
    GroupId
);
id_type!(
    /// A client role's id (a role one client defines).
    ClientRoleId
);
