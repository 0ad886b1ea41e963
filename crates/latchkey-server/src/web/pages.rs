//! Minimal server-rendered pages (error and landing). Everything interpolated is escaped; the
//! CSP allows no inline script or style, so styling comes from `/assets/latchkey.css`.

pub(crate) const CSS: &str = include_str!("../../assets/latchkey.css");

/// HTML-escapes text for element content and quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// `message_page` as a never-cached response with `status`.
pub(crate) fn message_response(
    status: actix_web::http::StatusCode,
    title: &str,
    message: &str,
) -> actix_web::HttpResponse {
    actix_web::HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .body(message_page(title, message))
}

/// A complete page with a heading and one paragraph.
pub(crate) fn message_page(title: &str, message: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{t} · Latchkey</title><link rel=\"stylesheet\" href=\"/assets/latchkey.css\"></head>\
         <body><main class=\"card\"><h1>{t}</h1><p role=\"alert\">{m}</p></main></body></html>\n",
        t = escape(title),
        m = escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_escapes_markup() {
        let p = message_page("<b>x</b>", "\"><script>alert(1)</script>");
        assert!(!p.contains("<script>"));
        assert!(p.contains("&lt;script&gt;"));
        assert!(p.contains("&lt;b&gt;x&lt;/b&gt;"));
    }
}
