//! The pages kithd serves and writes: one HTML shell (the person's language, a readable
//! layout from 320 px wide with large touch targets, no script, no third-party resource) and
//! the headers every page carries: `Cache-Control: no-store` and a strict
//! Content-Security-Policy that allows only this stylesheet. Must not read the ledger.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine as _;
use sha2::Digest as _;

/// The only stylesheet: system fonts, high contrast (text at least 7:1, controls 4.5:1),
/// targets at least 48 px, sizes in rem so the browser's text size scales everything.
pub(crate) const STYLE: &str = "\
:root{color-scheme:light;--ink:#111;--muted:#444;--line:#767676;--accent:#0b4f8a;--ok:#1b5e20;--warn:#8a4b00;--bg:#fff;--soft:#f2f2f2}\
*{box-sizing:border-box}\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;font-size:1.125rem;line-height:1.5;color:var(--ink);background:var(--bg);max-width:40rem;margin:0 auto;padding:1rem}\
h1{font-size:1.6rem;line-height:1.25;margin:.5rem 0 1rem}h2{font-size:1.25rem;margin:1.5rem 0 .5rem}\
a{color:var(--accent)}p.when,p.muted,.muted{color:var(--muted)}\
.choices{display:flex;flex-wrap:wrap;gap:.5rem;border:0;padding:0;margin:0 0 1rem}\
.choices legend{font-weight:600;margin-bottom:.5rem;padding:0}\
button,.button{font:inherit;min-height:3rem;min-width:3rem;padding:.5rem 1rem;border:2px solid var(--accent);border-radius:.5rem;background:var(--bg);color:var(--accent);cursor:pointer}\
button.primary{background:var(--accent);color:#fff}\
button:focus-visible,a:focus-visible,textarea:focus-visible,input:focus-visible{outline:3px solid #000;outline-offset:2px}\
label{display:block;font-weight:600;margin:.75rem 0 .25rem}\
textarea,input[type=password],input[type=text]{font:inherit;width:100%;min-height:3rem;padding:.5rem;border:2px solid var(--line);border-radius:.5rem}\
.card{border:1px solid var(--line);border-radius:.75rem;padding:1rem;margin:0 0 1rem}\
.state{font-weight:600}.state.answered{color:var(--ok)}.state.open{color:var(--accent)}.state.snoozed,.state.paused{color:var(--warn)}\
.crisis{border-left:.4rem solid var(--warn);padding:.5rem 1rem;background:var(--soft);margin:1.5rem 0}\
ul.plain{list-style:none;padding:0}ul.plain li{padding:.5rem 0;border-bottom:1px solid var(--soft)}ul.plain li.card{padding:1rem;border:1px solid var(--line)}.card h3{margin:0 0 .25rem;font-size:1.2rem}.card p{margin:.25rem 0}\
nav{display:flex;flex-wrap:wrap;gap:1rem;margin:1rem 0}\
svg{max-width:100%;height:auto}\
table{border-collapse:collapse}td,th{padding:.25rem .5rem;text-align:left}\
.legend{display:flex;flex-wrap:wrap;gap:1rem;font-size:1rem}.swatch{display:inline-block;width:1rem;height:1rem;border:1px solid var(--line);vertical-align:middle;margin-right:.25rem}\
.s-taken{background:#1b7f3b}.s-skipped{background:#c77700}.s-none{background:#b3261e}.s-empty{background:#eeeeee}\
";

/// The Content-Security-Policy of every page: nothing but the one stylesheet above, forms
/// only to this server, never framed.
pub(crate) fn csp() -> String {
    let digest = sha2::Sha256::digest(STYLE.as_bytes());
    format!(
        "default-src 'none'; style-src 'sha256-{}'; img-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// A whole HTML document: `title` as its heading, `body` (already escaped HTML) below it.
/// With `meta_csp`, the policy is also in a `<meta>` (for a file with no headers).
pub(crate) fn document(lang: &str, title: &str, body: &str, meta_csp: bool) -> String {
    let meta = if meta_csp {
        format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            csp()
        )
    } else {
        String::new()
    };
    let title = escape(title);
    format!(
        "<!doctype html><html lang=\"{lang}\"><head><meta charset=\"utf-8\">{meta}<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>{STYLE}</style></head><body><main><h1>{title}</h1>{body}</main></body></html>"
    )
}

/// A page response in `lang`, with the headers every page carries.
pub(crate) fn page_in(lang: &str, status: StatusCode, title: &str, body: &str) -> Response {
    let mut r = (status, Html(document(lang, title, body, false))).into_response();
    secure(&mut r);
    r
}

/// Adds the headers every page carries.
pub(crate) fn secure(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(v) = HeaderValue::from_str(&csp()) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

/// `s` safe in HTML text and in double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_exactly_the_stylesheet() {
        let p = csp();
        assert!(p.starts_with("default-src 'none'; style-src 'sha256-"));
        let doc = document("de", "<Hi>", "<p>x</p>", true);
        assert!(doc.contains("<html lang=\"de\">") && doc.contains("<h1>&lt;Hi&gt;</h1>"));
        assert!(!doc.contains("<script"));
        assert_eq!(escape("a<\"'&"), "a&lt;&quot;'&amp;");
    }
}
