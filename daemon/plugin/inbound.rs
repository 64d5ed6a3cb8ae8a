//! Replies coming in through a gateway: the request a plugin's `fn inbound(request,
//! settings)` is shown, what it may return (a message, a rejection or nothing), what the
//! gateway is answered, and the helpers a script verifies and decodes with
//! (`verify_signature`, `parse_form`, `xml_escape`). Signatures are checked in the host,
//! with the channel's own secrets resolved before the call and compared in constant time,
//! so a script never holds a secret's value. Must not perform I/O or know about plans.

use std::cell::RefCell;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::contract::ContractError;
use super::secret::SecretText;

/// Largest inbound request body, as gateways send long and non-ASCII texts.
pub const MAX_INBOUND_BODY: usize = 64 * 1024;

/// A gateway's request as `inbound` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundRequest {
    pub method: String,
    /// The full URL as the gateway called it: the plan's `public_url`, the path and the
    /// query string.
    pub url: String,
    /// Decoded query parameters (the last of a repeated name wins).
    pub query: Vec<(String, String)>,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl InboundRequest {
    pub fn to_dynamic(&self) -> Dynamic {
        let pairs = |v: &[(String, String)]| {
            let mut m = Map::new();
            for (k, v) in v {
                m.insert(k.as_str().into(), v.clone().into());
            }
            Dynamic::from(m)
        };
        let mut m = Map::new();
        m.insert("method".into(), self.method.clone().into());
        m.insert("url".into(), self.url.clone().into());
        m.insert("query".into(), pairs(&self.query));
        m.insert("headers".into(), pairs(&self.headers));
        m.insert("body".into(), self.body.clone().into());
        m.into()
    }

    /// Reads a captured request as raw HTTP/1.1 text (request line, headers, a blank line,
    /// the body), as `nc -l` or a proxy log shows it. `public_url` gives the scheme and host
    /// the gateway called, since the request line has only the path.
    pub fn parse_raw(raw: &str, public_url: &str) -> Result<Self, String> {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap_or_default();
        let mut parts = first.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return Err(
                "the first line must be a request line such as `POST /inbound/sms HTTP/1.1`".into(),
            );
        };
        let mut headers = Vec::new();
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                return Err(format!("`{line}` is not a header line (`Name: value`)"));
            };
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        Ok(Self::new(
            method,
            public_url,
            path,
            query,
            headers,
            body.to_string(),
        ))
    }

    /// A request for `path?query` under `public_url`.
    pub fn new(
        method: &str,
        public_url: &str,
        path: &str,
        query: &str,
        headers: Vec<(String, String)>,
        body: String,
    ) -> Self {
        let mut url = format!("{}{path}", public_url.trim_end_matches('/'));
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        Self {
            method: method.to_ascii_uppercase(),
            url,
            query: form_pairs(query),
            headers,
            body,
        }
    }
}

/// What `inbound` made of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A text from `from`.
    Message {
        from: String,
        text: String,
        /// The gateway's message id, so a repeat is recognised.
        id: Option<String>,
        /// When the gateway received it, where it says.
        received: Option<DateTime<Utc>>,
    },
    /// Refused (a bad signature): nothing is recorded.
    Reject { reason: String, status: u16 },
    /// Nothing to record (a delivery receipt, a keep-alive).
    Nothing,
}

/// What the gateway is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayReply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl GatewayReply {
    /// An empty 200, for gateways that need nothing more.
    pub fn empty() -> Self {
        Self {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            body: String::new(),
        }
    }
}

fn text(m: &Map, key: &str) -> Result<Option<String>, ContractError> {
    match m.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) if v.is_string() => Ok(Some(v.clone().into_string().unwrap_or_default())),
        Some(v) if v.is_int() => Ok(Some(v.to_string())),
        Some(v) => Err(ContractError::WrongType {
            key: key.into(),
            expected: "a string",
            found: v.type_name(),
        }),
    }
}

fn status(m: &Map, default: u16) -> Result<u16, ContractError> {
    match m.get("status") {
        None => Ok(default),
        Some(v) => v
            .as_int()
            .ok()
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (200..=599).contains(s))
            .ok_or(ContractError::Shape(
                "`status` must be an HTTP status from 200 to 599",
            )),
    }
}

/// Reads what `inbound` returned.
pub fn inbound_from_dynamic(v: Dynamic) -> Result<Inbound, ContractError> {
    if v.is_unit() {
        return Ok(Inbound::Nothing);
    }
    let found = v.type_name();
    let Some(m) = v.try_cast::<Map>() else {
        return Err(ContractError::Returned {
            function: "inbound",
            expected: "a map or ()",
            found,
        });
    };
    if let Some(reason) = text(&m, "reject")? {
        return Ok(Inbound::Reject {
            reason,
            status: status(&m, 403)?,
        });
    }
    let (Some(from), Some(body)) = (text(&m, "from")?, text(&m, "text")?) else {
        return Err(ContractError::Shape(
            "`inbound` must return #{ from, text } for a message, #{ reject } to refuse, or ()",
        ));
    };
    let received = match text(&m, "received")? {
        None => None,
        Some(t) => Some(parse_received(&t).ok_or(ContractError::Shape(
            "`received` must be RFC 3339, `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds",
        ))?),
    };
    Ok(Inbound::Message {
        from,
        text: body,
        id: text(&m, "id")?.filter(|s| !s.is_empty()),
        received,
    })
}

/// A gateway's receipt time: RFC 3339, `YYYY-MM-DD HH:MM:SS` in UTC (Vonage), or Unix
/// seconds.
fn parse_received(t: &str) -> Option<DateTime<Utc>> {
    let t = t.trim();
    if let Ok(s) = t.parse::<i64>() {
        return DateTime::from_timestamp(s, 0);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Some(d.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|n| n.and_utc())
}

/// Reads what `inbound_response` returned: `()` means the plugin can't answer inline.
pub fn reply_from_dynamic(v: Dynamic) -> Result<Option<GatewayReply>, ContractError> {
    if v.is_unit() {
        return Ok(None);
    }
    let found = v.type_name();
    let Some(m) = v.try_cast::<Map>() else {
        return Err(ContractError::Returned {
            function: "inbound_response",
            expected: "a map or ()",
            found,
        });
    };
    Ok(Some(GatewayReply {
        status: status(&m, 200)?,
        content_type: text(&m, "content_type")?
            .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
        body: text(&m, "body")?.unwrap_or_default(),
    }))
}

/// Decodes `application/x-www-form-urlencoded` text into pairs.
pub fn form_pairs(s: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

thread_local! {
    /// The secrets of the channel whose `inbound` runs on this thread, resolved by the
    /// host before the call and dropped after it.
    static SECRETS: RefCell<Option<HashMap<String, String>>> = const { RefCell::new(None) };
}

/// Runs `f` with `secrets` available to `verify_signature`, and only to it.
pub fn with_secrets<T>(secrets: HashMap<String, String>, f: impl FnOnce() -> T) -> T {
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            SECRETS.with(|s| s.borrow_mut().take());
        }
    }
    SECRETS.with(|s| *s.borrow_mut() = Some(secrets));
    let _clear = Clear;
    f()
}

/// The value of a key given as a secret handle or plain text, from the call's secrets.
fn key_bytes(key: &Dynamic) -> Result<String, Box<EvalAltResult>> {
    let t = if let Some(s) = key.clone().try_cast::<SecretText>() {
        s
    } else if key.is_string() {
        SecretText::literal(key.clone().into_string().unwrap_or_default())
    } else {
        return Err("`verify_signature` needs the key as a secret setting or a string".into());
    };
    SECRETS.with(|s| {
        let s = s.borrow();
        let Some(secrets) = s.as_ref() else {
            return Err("`verify_signature` is only available in `inbound`".into());
        };
        t.resolve_with(|name| secrets.get(name).cloned())
            .map_err(|name| format!("secret `{name}` is not this channel's, or is not set").into())
    })
}

/// The signature methods `verify_signature` knows.
pub const METHODS: &[&str] = &[
    "hmac-sha1",
    "hmac-sha256",
    "hmac-sha512",
    "hmac-md5",
    "md5-hash",
];

/// Whether `given` (base64 or hex, either case) is the signature of `data` under `key` by
/// `method`. The comparison runs in constant time.
pub fn verify(method: &str, key: &[u8], data: &[u8], given: &str) -> Result<bool, String> {
    use hmac::{Hmac, Mac};
    use md5::Digest;
    fn mac<M: Mac + hmac::digest::KeyInit>(key: &[u8], data: &[u8]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key).expect("any key length");
        m.update(data);
        m.finalize().into_bytes().to_vec()
    }
    let expected = match method {
        "hmac-sha1" => mac::<Hmac<sha1::Sha1>>(key, data),
        "hmac-sha256" => mac::<Hmac<sha2::Sha256>>(key, data),
        "hmac-sha512" => mac::<Hmac<sha2::Sha512>>(key, data),
        "hmac-md5" => mac::<Hmac<md5::Md5>>(key, data),
        // Vonage's "MD5 hash": the digest of the signed text followed by the secret.
        "md5-hash" => {
            let mut h = md5::Md5::new();
            h.update(data);
            h.update(key);
            h.finalize().to_vec()
        }
        other => {
            return Err(format!(
                "unknown signature method `{other}`: use {}",
                METHODS.join(", ")
            ));
        }
    };
    Ok(matches_signature(&expected, given.trim()))
}

fn matches_signature(expected: &[u8], given: &str) -> bool {
    use base64::Engine as _;
    use subtle::ConstantTimeEq;
    let as_hex = hex::decode(given.to_ascii_lowercase()).ok();
    let as_b64 = base64::engine::general_purpose::STANDARD.decode(given).ok();
    let hex_ok = as_hex.is_some_and(|g| bool::from(g.as_slice().ct_eq(expected)));
    let b64_ok = as_b64.is_some_and(|g| bool::from(g.as_slice().ct_eq(expected)));
    hex_ok | b64_ok
}

/// Registers the inbound helpers with the engine.
pub(crate) fn register_helpers(engine: &mut Engine) {
    engine.register_fn(
        "verify_signature",
        |method: ImmutableString,
         key: Dynamic,
         data: ImmutableString,
         signature: ImmutableString|
         -> Result<bool, Box<EvalAltResult>> {
            let key = key_bytes(&key)?;
            verify(&method, key.as_bytes(), data.as_bytes(), &signature).map_err(Into::into)
        },
    );
    engine.register_fn("parse_form", |s: ImmutableString| {
        let mut m = Map::new();
        for (k, v) in form_pairs(&s) {
            m.insert(k.into(), v.into());
        }
        m
    });
    engine.register_fn("xml_escape", |s: ImmutableString| xml_escape(&s));
}

/// Text made safe inside XML or HTML (elements and quoted attributes).
pub(crate) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_by_every_method_in_hex_or_base64() {
        use base64::Engine as _;
        // Twilio's documented example: HMAC-SHA1 over the URL and sorted parameters.
        let data = "https://mycompany.com/myapp.php?foo=1&bar=2\
                    CallSidCA1234567890ABCDE\
                    Caller+12349013030\
                    Digits1234\
                    From+12349013030\
                    To+18005551212";
        assert!(
            verify(
                "hmac-sha1",
                b"12345",
                data.as_bytes(),
                "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
            )
            .unwrap()
        );
        assert!(
            !verify(
                "hmac-sha1",
                b"12345",
                b"changed",
                "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
            )
            .unwrap()
        );
        // md5-hash: md5(data + secret), in hex of either case.
        let d = "&a=1&b=2";
        let want = {
            use md5::Digest;
            hex::encode(md5::Md5::digest(format!("{d}secret")))
        };
        assert!(verify("md5-hash", b"secret", d.as_bytes(), &want).unwrap());
        assert!(verify("md5-hash", b"secret", d.as_bytes(), &want.to_uppercase()).unwrap());
        assert!(!verify("md5-hash", b"other", d.as_bytes(), &want).unwrap());
        for m in ["hmac-sha256", "hmac-sha512", "hmac-md5"] {
            assert!(!verify(m, b"k", b"d", "00").unwrap(), "{m}");
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode([1u8; 20]);
        assert!(!verify("hmac-sha1", b"k", b"d", &b64).unwrap());
        assert!(
            verify("sha3", b"k", b"d", "")
                .unwrap_err()
                .contains("unknown signature method")
        );
    }

    #[test]
    fn secrets_reach_verify_signature_only_inside_an_inbound_call() {
        let sb = super::super::sandbox::Sandbox::new();
        let ast = sb
            .compile(r#"fn f() { verify_signature("hmac-sha1", secret("tok"), "data", "x") }"#)
            .unwrap();
        let call = || sb.call(&ast, "f", vec![], std::time::Duration::from_secs(1));
        assert!(
            call()
                .unwrap_err()
                .message
                .contains("only available in `inbound`")
        );
        let other = HashMap::from([("other".to_string(), "v".to_string())]);
        assert!(
            with_secrets(other, call)
                .unwrap_err()
                .message
                .contains("not this channel's")
        );
        let own = HashMap::from([("tok".to_string(), "v".to_string())]);
        assert_eq!(with_secrets(own, call).unwrap().as_bool(), Ok(false));
        assert!(call().unwrap_err().message.contains("only available"));
    }

    #[test]
    fn reads_what_inbound_returns() {
        let m = |s: &str| {
            let e = Engine::new();
            inbound_from_dynamic(e.eval::<Dynamic>(s).unwrap())
        };
        assert_eq!(m("()"), Ok(Inbound::Nothing));
        assert_eq!(
            m(r#"#{ reject: "bad signature" }"#),
            Ok(Inbound::Reject {
                reason: "bad signature".into(),
                status: 403
            })
        );
        assert_eq!(
            m(r#"#{ from: "+1", text: "OK", id: "SM1", received: "2026-11-30 10:00:00" }"#),
            Ok(Inbound::Message {
                from: "+1".into(),
                text: "OK".into(),
                id: Some("SM1".into()),
                received: DateTime::from_timestamp(1_796_032_800, 0),
            })
        );
        assert!(m(r#"#{ text: "OK" }"#).is_err());
        assert!(m(r#"#{ from: "+1", text: "OK", received: "soon" }"#).is_err());
        assert!(m("42").is_err());
    }

    #[test]
    fn a_raw_capture_becomes_a_request() {
        let r = InboundRequest::parse_raw(
            "POST /inbound/sms?x=1 HTTP/1.1\r\nHost: k\r\nX-Twilio-Signature: abc\r\n\r\nFrom=%2B1&Body=OK",
            "https://kithd.example.org/",
        )
        .unwrap();
        assert_eq!(r.url, "https://kithd.example.org/inbound/sms?x=1");
        assert_eq!(r.query, vec![("x".into(), "1".into())]);
        assert!(
            r.headers
                .contains(&("x-twilio-signature".into(), "abc".into()))
        );
        assert_eq!(r.body, "From=%2B1&Body=OK");
        assert!(InboundRequest::parse_raw("nonsense", "https://k").is_err());
    }
}
