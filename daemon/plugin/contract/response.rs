//! The gateway's response as `on_response` sees it, the outcome a script (or the default
//! rule) draws from it, and keeping message text and secrets out of failure reasons.

use std::collections::BTreeMap;
use std::time::Duration;

use rhai::{Dynamic, Map};

use super::{ContractError, Outcome, err, plain_of};

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
const ON_RESPONSE: &str =
    "`on_response` must return \"sent\", \"retry\", \"permanent\" or a map with `outcome`";

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
                return err(ContractError::Shape(ON_RESPONSE));
            }
        }
    } else {
        return err(ContractError::Shape(ON_RESPONSE));
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
            return err(ContractError::UnknownWord {
                what: "outcome",
                word: other.to_string(),
                allowed: "\"sent\", \"retry\" or \"permanent\"",
            });
        }
    })
}
