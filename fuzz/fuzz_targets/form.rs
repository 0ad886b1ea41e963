//! The strict form and query parsers of `latchkey_server::web::form`. The first byte picks
//! the content type; whatever parses must come back the same when re-encoded and parsed again.
#![no_main]

use latchkey_server::{parse_form, parse_query};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [&str; 4] = [
    "application/x-www-form-urlencoded",
    "Application/X-WWW-Form-URLEncoded; charset=\"UTF-8\"",
    "application/x-www-form-urlencoded; charset=latin1",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let ct = CONTENT_TYPES[usize::from(pick) % CONTENT_TYPES.len()];
    let _ = parse_form(Some(ct), body, 4096);
    let Ok(query) = std::str::from_utf8(body) else {
        return;
    };
    if let Ok(params) = parse_query(query) {
        let again: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params.0.iter())
            .finish();
        assert_eq!(parse_query(&again).as_ref(), Ok(&params), "re-encoded: {again}");
    }
});
