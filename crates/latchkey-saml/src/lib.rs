//! The SAML 2.0 service-provider side of Latchkey's bridge toward customer IdPs: IdP metadata
//! in, SP metadata out, AuthnRequests over HTTP-Redirect, and a response validator that trusts
//! only the connection's pinned certificates and reads only the element its verified signature
//! covers. No HTTP and no storage here: the server passes in what was asked for and the clock,
//! and keeps the replay cache.
//!
//! One XML parser (roxmltree) serves canonicalization, signature checks and reading, so the
//! signed element and the read element can't differ by parser (the root of most XSW bugs).

mod c14n;
pub mod certs;
mod dsig;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod logout;
pub mod metadata;
pub mod request;
pub mod response;
pub mod sp_key;
mod xenc;
pub mod xml;

pub use error::{Result, SamlError};
pub use metadata::{
    SpDescriptor, idp_metadata, parse_idp_metadata, parse_idp_metadata_signed_by, sp_metadata,
};
pub use request::{AuthnRequest, redirect_url, request_id};
pub use response::{Assertion, Attribute, Expected, decode_post, is_multi_factor, validate};
pub use sp_key::{SpKey, generate_sp_key};
pub use xenc::ContentCipher;
