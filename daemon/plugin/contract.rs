//! The plugin contract in Rust terms: the `message` a script receives, the request it
//! returns (HTTP, email, standard output or nothing), and the outcome of performing it.
//! Owns conversion between rhai values and these types; it must not perform I/O.

use std::collections::BTreeMap;
use std::time::Duration;

use rhai::{Array, Dynamic, Map};

use super::secret::SecretText;

/// What a plugin is asked to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Stable delivery id (also the webhook `Idempotency-Key`).
    pub delivery_id: String,
    pub item: String,
    pub kind: String,
    /// Scheduled instant, RFC 3339 with the item's local offset.
    pub scheduled: String,
    /// Rendered text (health data: never logged at info level).
    pub text: String,
    /// A short title (`Check-in`, `Medication`, …).
    pub title: String,
    pub recipient: String,
    pub recipient_name: String,
    /// The recipient's address for this channel (`email`, `phone`, `ntfy_topic`, …), if any.
    pub address: Option<String>,
    pub urgent: bool,
    /// A signed link where the recipient can answer, when the item expects an answer.
    pub answer_url: Option<String>,
    /// The answers the link accepts (`ok`, `1`…`5`; or `taken`, `skipped`).
    pub choices: Vec<String>,
}

impl Message {
    pub fn to_dynamic(&self) -> Dynamic {
        let mut m = Map::new();
        m.insert("id".into(), self.delivery_id.clone().into());
        m.insert("delivery_id".into(), self.delivery_id.clone().into());
        m.insert("item".into(), self.item.clone().into());
        m.insert("kind".into(), self.kind.clone().into());
        m.insert("scheduled".into(), self.scheduled.clone().into());
        m.insert("text".into(), self.text.clone().into());
        m.insert("title".into(), self.title.clone().into());
        m.insert("recipient".into(), self.recipient.clone().into());
        m.insert("recipient_name".into(), self.recipient_name.clone().into());
        m.insert(
            "address".into(),
            self.address
                .clone()
                .map(Dynamic::from)
                .unwrap_or(Dynamic::UNIT),
        );
        m.insert("urgent".into(), self.urgent.into());
        m.insert(
            "answer_url".into(),
            self.answer_url
                .clone()
                .map(Dynamic::from)
                .unwrap_or(Dynamic::UNIT),
        );
        m.insert(
            "choices".into(),
            self.choices
                .iter()
                .cloned()
                .map(Dynamic::from)
                .collect::<Array>()
                .into(),
        );
        m.into()
    }
}

/// An HTTP method a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
}

/// An HTTP request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    None,
    /// `application/x-www-form-urlencoded`; values may hold secrets.
    Form(Vec<(String, SecretText)>),
    /// `application/json`; may not hold secrets.
    Json(serde_json::Value),
    /// Raw text with its content type.
    Text {
        content_type: String,
        text: String,
    },
}

/// Instructs the host to sign the body with HMAC-SHA256 into a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    pub header: String,
    pub key: SecretText,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: Method,
    pub url: SecretText,
    pub headers: Vec<(String, SecretText)>,
    pub body: Body,
    pub basic_auth: Option<(SecretText, SecretText)>,
    pub bearer: Option<SecretText>,
    pub sign: Option<Signing>,
}

impl HttpRequest {
    /// Every text of the request that may hold a secret.
    pub fn secret_texts(&self) -> Vec<&SecretText> {
        let mut out = vec![&self.url];
        out.extend(self.headers.iter().map(|(_, v)| v));
        if let Body::Form(pairs) = &self.body {
            out.extend(pairs.iter().map(|(_, v)| v));
        }
        if let Some((u, p)) = &self.basic_auth {
            out.extend([u, p]);
        }
        out.extend(&self.bearer);
        out.extend(self.sign.as_ref().map(|s| &s.key));
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailRequest {
    pub to: String,
    pub subject: String,
    pub text: String,
}

/// What a plugin's `send` returned.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Http(HttpRequest),
    Email(EmailRequest),
    Stdout(String),
    Skip,
}

/// The result of performing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The gateway accepted it (with its id when it gave one).
    Sent { gateway_id: Option<String> },
    /// A transient failure; try again (not before `after`, when given).
    Retry {
        after: Option<Duration>,
        reason: String,
    },
    /// Retrying this channel won't help.
    Permanent { reason: String },
    /// The plugin chose not to send.
    Skipped,
}

/// A malformed request description from a script.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ContractError(pub String);

fn err<T>(m: impl Into<String>) -> Result<T, ContractError> {
    Err(ContractError(m.into()))
}

fn text_of(v: &Dynamic, what: &str) -> Result<SecretText, ContractError> {
    if let Some(s) = v.clone().try_cast::<SecretText>() {
        return Ok(s);
    }
    if v.is_string() {
        return Ok(SecretText::literal(
            v.clone().into_string().unwrap_or_default(),
        ));
    }
    if v.is_int() || v.is_float() || v.is_bool() {
        return Ok(SecretText::literal(v.to_string()));
    }
    err(format!(
        "`{what}` must be a string, found {}",
        v.type_name()
    ))
}

fn plain_of(v: &Dynamic, what: &str) -> Result<String, ContractError> {
    let t = text_of(v, what)?;
    match t.plain() {
        Some(p) => Ok(p),
        None => err(format!("`{what}` can't contain a secret")),
    }
}

fn pairs(v: &Dynamic, what: &str) -> Result<Vec<(String, SecretText)>, ContractError> {
    let Some(map) = v.read_lock::<Map>() else {
        return err(format!("`{what}` must be a map, found {}", v.type_name()));
    };
    map.iter()
        .filter(|(_, v)| !v.is_unit())
        .map(|(k, v)| Ok((k.to_string(), text_of(v, &format!("{what}.{k}"))?)))
        .collect()
}

/// Reads the value a script's `send` returned.
pub fn request_from_dynamic(v: Dynamic) -> Result<Request, ContractError> {
    if v.is_unit() {
        return Ok(Request::Skip);
    }
    let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return err(format!(
            "`send` must return a map or `()`, found {}",
            v.type_name()
        ));
    };
    let get = |k: &str| map.get(k).filter(|v| !v.is_unit());
    let kind = match get("type") {
        Some(t) => plain_of(t, "type")?,
        None => return err("the request map needs `type`: \"http\", \"email\" or \"stdout\""),
    };
    let known: &[&str] = match kind.as_str() {
        "http" => &[
            "type",
            "method",
            "url",
            "headers",
            "form",
            "json",
            "body",
            "content_type",
            "basic_auth",
            "bearer",
            "sign",
        ],
        "email" => &["type", "to", "subject", "text"],
        "stdout" => &["type", "text"],
        other => {
            return err(format!(
                "unknown request type `{other}`: use \"http\", \"email\" or \"stdout\""
            ));
        }
    };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return err(format!("unknown key `{k}` in a `{kind}` request"));
    }
    match kind.as_str() {
        "stdout" => Ok(Request::Stdout(plain_of(
            get("text").unwrap_or(&Dynamic::from("")),
            "text",
        )?)),
        "email" => {
            let field = |k: &str| match get(k) {
                Some(v) => plain_of(v, k),
                None => err(format!("an email request needs `{k}`")),
            };
            Ok(Request::Email(EmailRequest {
                to: field("to")?,
                subject: field("subject")?,
                text: field("text")?,
            }))
        }
        _ => {
            let method = match get("method")
                .map(|m| plain_of(m, "method"))
                .transpose()?
                .as_deref()
            {
                None | Some("POST") | Some("post") => Method::Post,
                Some("GET") | Some("get") => Method::Get,
                Some("PUT") | Some("put") => Method::Put,
                Some(other) => return err(format!("unsupported HTTP method `{other}`")),
            };
            let url = match get("url") {
                Some(u) => text_of(u, "url")?,
                None => return err("an http request needs `url`"),
            };
            let headers = match get("headers") {
                Some(h) => pairs(h, "headers")?,
                None => Vec::new(),
            };
            let bodies = ["form", "json", "body"]
                .iter()
                .filter(|k| get(k).is_some())
                .count();
            if bodies > 1 {
                return err("give only one of `form`, `json` or `body`");
            }
            let body = if let Some(f) = get("form") {
                Body::Form(pairs(f, "form")?)
            } else if let Some(j) = get("json") {
                Body::Json(dynamic_to_json(j)?)
            } else if let Some(b) = get("body") {
                Body::Text {
                    content_type: get("content_type")
                        .map(|c| plain_of(c, "content_type"))
                        .transpose()?
                        .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
                    text: plain_of(b, "body")?,
                }
            } else {
                Body::None
            };
            let basic_auth = match get("basic_auth") {
                Some(a) => {
                    let Some(arr) = a.read_lock::<Array>().map(|a| a.clone()) else {
                        return err("`basic_auth` must be `[user, password]`");
                    };
                    if arr.len() != 2 {
                        return err("`basic_auth` must be `[user, password]`");
                    }
                    Some((
                        text_of(&arr[0], "basic_auth user")?,
                        text_of(&arr[1], "basic_auth password")?,
                    ))
                }
                None => None,
            };
            let bearer = get("bearer").map(|b| text_of(b, "bearer")).transpose()?;
            let sign = match get("sign") {
                Some(s) => {
                    let Some(m) = s.read_lock::<Map>().map(|m| m.clone()) else {
                        return err("`sign` must be a map with `header` and `key`");
                    };
                    let header = m
                        .get("header")
                        .map(|h| plain_of(h, "sign.header"))
                        .transpose()?;
                    let key = m.get("key").map(|k| text_of(k, "sign.key")).transpose()?;
                    let prefix = m
                        .get("prefix")
                        .map(|p| plain_of(p, "sign.prefix"))
                        .transpose()?;
                    match (header, key) {
                        (Some(header), Some(key)) => Some(Signing {
                            header,
                            key,
                            prefix: prefix.unwrap_or_default(),
                        }),
                        _ => return err("`sign` needs `header` and `key`"),
                    }
                }
                None => None,
            };
            Ok(Request::Http(HttpRequest {
                method,
                url,
                headers,
                body,
                basic_auth,
                bearer,
                sign,
            }))
        }
    }
}

/// Converts a script value to JSON; secrets are refused.
pub fn dynamic_to_json(v: &Dynamic) -> Result<serde_json::Value, ContractError> {
    use serde_json::Value;
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null));
    }
    if v.is_string() {
        return Ok(Value::String(v.clone().into_string().unwrap_or_default()));
    }
    if v.is::<SecretText>() {
        return err(
            "a secret can't be placed in a JSON body; use a header, `bearer` or `basic_auth`",
        );
    }
    if let Some(a) = v.read_lock::<Array>() {
        return a
            .iter()
            .map(dynamic_to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, v) in m.iter() {
            out.insert(k.to_string(), dynamic_to_json(v)?);
        }
        return Ok(Value::Object(out));
    }
    err(format!("a `{}` can't be written as JSON", v.type_name()))
}

/// Converts JSON to a script value.
pub fn json_to_dynamic(v: &serde_json::Value) -> Dynamic {
    use serde_json::Value;
    match v {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => (*b).into(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or(0.0).into(),
        },
        Value::String(s) => s.clone().into(),
        Value::Array(a) => a.iter().map(json_to_dynamic).collect::<Array>().into(),
        Value::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o {
                m.insert(k.as_str().into(), json_to_dynamic(v));
            }
            m.into()
        }
    }
}

/// An HTTP response as shown to `on_response`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// Lower-cased header names.
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// When the host received it: a `Retry-After` date counts from here.
    pub received: chrono::DateTime<chrono::Utc>,
}

impl Response {
    pub fn to_dynamic(&self) -> Dynamic {
        let mut m = Map::new();
        m.insert("status".into(), (self.status as rhai::INT).into());
        let mut h = Map::new();
        for (k, v) in &self.headers {
            h.insert(k.as_str().into(), v.clone().into());
        }
        m.insert("headers".into(), h.into());
        m.insert("body".into(), self.body.clone().into());
        m.into()
    }

    /// `Retry-After` in seconds or as an HTTP date.
    pub fn retry_after(&self) -> Option<Duration> {
        let v = self.headers.get("retry-after")?.trim();
        if let Ok(s) = v.parse::<u64>() {
            return Some(Duration::from_secs(s));
        }
        let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
        let secs = (at.with_timezone(&chrono::Utc) - self.received)
            .num_seconds()
            .max(0);
        Some(Duration::from_secs(secs as u64))
    }

    /// The default classification: 2xx sent, 408/429/5xx retry (honouring Retry-After),
    /// other statuses permanent.
    pub fn default_outcome(&self) -> Outcome {
        match self.status {
            200..=299 => Outcome::Sent { gateway_id: None },
            408 | 429 | 500..=599 => Outcome::Retry {
                after: self.retry_after(),
                reason: format!("HTTP {}", self.status),
            },
            s => Outcome::Permanent {
                reason: format!("HTTP {s}{}", gateway_code(&self.body)),
            },
        }
    }
}

/// A gateway's own error code from a JSON error body (`code`, `error_code`, `errorCode`),
/// as ` (gateway code X)`: never the body's text, which may echo the message back.
fn gateway_code(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else {
        return String::new();
    };
    let found = ["code", "error_code", "errorCode"].iter().find_map(|k| {
        let c = v.get(k).or_else(|| v.get("error").and_then(|e| e.get(k)))?;
        let c = match c {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) => s.clone(),
            _ => return None,
        };
        let short = c.len() <= 32
            && c.chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        short.then_some(c)
    });
    found
        .map(|c| format!(" (gateway code {c})"))
        .unwrap_or_default()
}

/// Keeps a failure reason fit for the log and the ledger: one line, at most 160
/// characters, and withheld when it repeats the message text (health data).
pub fn scrub_reason(reason: &str, message_text: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let probe: String = message_text.trim().chars().take(24).collect();
    if probe.chars().count() >= 8 && one_line.contains(&probe) {
        return "(reason withheld: it repeated the message text)".into();
    }
    let mut out: String = one_line.trim().chars().take(160).collect();
    if one_line.trim().chars().count() > 160 {
        out.push('…');
    }
    out
}

/// A reason with any occurrence of `secret` (or, since reasons are cut to 160 characters,
/// of its first 8 or more characters at the reason's end) replaced by `[secret withheld]`.
pub fn withhold_secret(reason: &str, secret: &str) -> String {
    let secret = secret.trim();
    if secret.chars().count() < 4 {
        return reason.to_string();
    }
    let mut out = reason.replace(secret, "[secret withheld]");
    // A secret cut off by the 160-character limit still leaves its start behind.
    let body = out.trim_end_matches('…');
    let chars: Vec<char> = secret.chars().collect();
    for len in (8..chars.len()).rev() {
        let head: String = chars[..len].iter().collect();
        if body.ends_with(&head) {
            let keep = body.len() - head.len();
            out = format!("{}[secret withheld]…", &body[..keep]);
            break;
        }
    }
    out
}

/// Reads what `on_response` returned; `()` means "use the default classification".
pub fn outcome_from_dynamic(v: Dynamic, response: &Response) -> Result<Outcome, ContractError> {
    if v.is_unit() {
        return Ok(response.default_outcome());
    }
    let (verdict, map) = if v.is_string() {
        (v.into_string().unwrap_or_default(), Map::new())
    } else if let Some(m) = v.read_lock::<Map>().map(|m| m.clone()) {
        let o = m
            .get("outcome")
            .map(|o| plain_of(o, "outcome"))
            .transpose()?;
        match o {
            Some(o) => (o, m),
            None => {
                return err(
                    "`on_response` must return \"sent\", \"retry\", \"permanent\" or a map with `outcome`",
                );
            }
        }
    } else {
        return err(
            "`on_response` must return \"sent\", \"retry\", \"permanent\" or a map with `outcome`",
        );
    };
    let reason = map
        .get("reason")
        .map(|r| plain_of(r, "reason"))
        .transpose()?
        .unwrap_or_else(|| format!("HTTP {}", response.status));
    Ok(match verdict.as_str() {
        "sent" => Outcome::Sent {
            gateway_id: map
                .get("id")
                .filter(|v| !v.is_unit())
                .map(|v| v.to_string()),
        },
        "retry" => Outcome::Retry {
            after: map
                .get("retry_after")
                .and_then(|r| r.as_int().ok())
                .map(|s| Duration::from_secs(s.max(0) as u64))
                .or_else(|| response.retry_after()),
            reason,
        },
        "permanent" => Outcome::Permanent { reason },
        other => {
            return err(format!(
                "unknown outcome `{other}`: use \"sent\", \"retry\" or \"permanent\""
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        Response {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: String::new(),
            received: "2026-12-01T08:00:00Z".parse().unwrap(),
        }
    }

    #[test]
    fn default_classification() {
        assert_eq!(
            resp(201, &[]).default_outcome(),
            Outcome::Sent { gateway_id: None }
        );
        assert_eq!(
            resp(429, &[("retry-after", "30")]).default_outcome(),
            Outcome::Retry {
                after: Some(Duration::from_secs(30)),
                reason: "HTTP 429".into()
            }
        );
        assert!(matches!(
            resp(503, &[]).default_outcome(),
            Outcome::Retry { after: None, .. }
        ));
        // An HTTP date counts from when the response arrived, whatever the clock says now.
        assert_eq!(
            resp(503, &[("retry-after", "Tue, 01 Dec 2026 08:01:30 GMT")]).retry_after(),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            resp(503, &[("retry-after", "Tue, 01 Dec 2026 07:00:00 GMT")]).retry_after(),
            Some(Duration::ZERO)
        );
        assert!(matches!(
            resp(400, &[]).default_outcome(),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn request_maps_are_checked() {
        let mut m = Map::new();
        m.insert("type".into(), "http".into());
        assert_eq!(
            request_from_dynamic(m.clone().into()).unwrap_err().0,
            "an http request needs `url`"
        );
        m.insert("url".into(), "http://127.0.0.1/x".into());
        m.insert("bogus".into(), 1.into());
        assert_eq!(
            request_from_dynamic(m.into()).unwrap_err().0,
            "unknown key `bogus` in a `http` request"
        );
        assert_eq!(request_from_dynamic(Dynamic::UNIT).unwrap(), Request::Skip);
        assert!(request_from_dynamic(Dynamic::from(5)).is_err());
    }

    #[test]
    fn secrets_refused_in_json() {
        let mut m = Map::new();
        m.insert("k".into(), Dynamic::from(SecretText::named("x")));
        assert!(dynamic_to_json(&m.into()).is_err());
    }

    #[test]
    fn secrets_are_withheld_from_reasons_even_when_cut_off() {
        let key = "kithd-test-secret-4f1c9a7e2b";
        assert_eq!(
            withhold_secret(&format!("HTTP 400 (gateway code {key})"), key),
            "HTTP 400 (gateway code [secret withheld])"
        );
        let cut = scrub_reason(&format!("{} {key}", "x".repeat(140)), "");
        let withheld = withhold_secret(&cut, key);
        assert!(withheld.ends_with("[secret withheld]…"), "{withheld}");
        assert!(!withheld.contains("kithd-te"), "{withheld}");
        // Too short to tell apart from ordinary words: left alone.
        assert_eq!(withhold_secret("HTTP 400 abc", "abc"), "HTTP 400 abc");
    }
}
