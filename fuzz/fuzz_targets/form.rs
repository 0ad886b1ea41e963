//! The strict form, query and multipart parsers of `latchkey_server::web::form`. The first
//! byte picks the content type; whatever parses must come back the same when re-encoded and
//! parsed again (a multipart form whose values hold no delimiter, too).
#![no_main]

use latchkey_server::{parse_form, parse_multipart, parse_query};
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
    multipart(body);
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

const MULTIPART: &str = "multipart/form-data; boundary=fz";

fn multipart(body: &[u8]) {
    let Ok(params) = parse_multipart(MULTIPART, body, 4096) else {
        return;
    };
    if params
        .0
        .iter()
        .any(|(k, v)| k.contains(['"', '\r', '\n', ';']) || v.contains("\r\n--fz"))
    {
        return;
    }
    let mut again = String::new();
    for (k, v) in &params.0 {
        again.push_str("--fz\r\nContent-Disposition: form-data; name=\"");
        again.push_str(k);
        again.push_str("\"\r\n\r\n");
        again.push_str(v);
        again.push_str("\r\n");
    }
    again.push_str("--fz--");
    assert_eq!(
        parse_multipart(MULTIPART, again.as_bytes(), 1 << 20).as_ref(),
        Ok(&params),
        "re-encoded: {again}"
    );
}
