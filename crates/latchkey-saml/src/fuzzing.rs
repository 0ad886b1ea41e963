//! Entry points for the fuzz targets (`fuzz/`) and the differential c14n test: the private
//! canonicalization, reached through the same guarded parse as a response. Not an API.

use crate::Result;
use crate::xml::{self, Limits};

/// The exclusive c14n (without comments) of the document element of `text`, parsed under
/// `limits`; `inclusive` is an `InclusiveNamespaces` PrefixList.
pub fn canonicalize_document(text: &str, limits: Limits, inclusive: &[&str]) -> Result<Vec<u8>> {
    let doc = xml::parse(text, limits)?;
    Ok(crate::c14n::canonicalize(
        text,
        doc.root_element(),
        None,
        inclusive,
    ))
}
