//! JWS algorithms Latchkey signs with (RFC 7518 §3, RFC 8037).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Alg {
    /// ECDSA P-256 with SHA-256: the default for access tokens.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys): required by OIDC for ID tokens.
    RS256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::RS256 => "RS256",
            Alg::EdDSA => "EdDSA",
        }
    }
}

impl std::str::FromStr for Alg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ES256" => Ok(Alg::ES256),
            "RS256" => Ok(Alg::RS256),
            "EdDSA" => Ok(Alg::EdDSA),
            other => Err(format!(
                "unknown algorithm {other:?}; expected ES256, RS256 or EdDSA"
            )),
        }
    }
}

impl std::fmt::Display for Alg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
