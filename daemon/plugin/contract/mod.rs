//! The plugin contract in Rust terms: the `message` a script receives, the request it
//! returns (`request`), the response it may judge and the outcome (`response`), and JSON
//! both ways (`json`). Owns conversion between rhai values and these types; it must not
//! perform I/O.

mod json;
mod request;
mod response;
#[cfg(test)]
mod tests;

use std::time::Duration;

use rhai::{Array, Dynamic, Map};

use super::secret::SecretText;

pub use json::{dynamic_to_json, json_to_dynamic};
pub use request::{
    Body, EmailRequest, HttpRequest, Method, Request, Signing, request_from_dynamic,
};
pub use response::{Response, outcome_from_dynamic, scrub_reason, withhold_secret};

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

/// What a script returned that the contract doesn't allow. The message names the key and
/// what was expected; it never includes a value (which might be message text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    /// A function returned a value of the wrong type.
    #[error("`{function}` must return {expected}, found {found}")]
    Returned {
        function: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    /// A key holds a value of the wrong type.
    #[error("`{key}` must be {expected}, found {found}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: &'static str,
    },
    /// A key that must be plain text holds a secret.
    #[error("`{0}` can't contain a secret")]
    SecretNotAllowed(String),
    /// A word the contract doesn't know (a request type, an outcome).
    #[error("unknown {what} `{word}`: use {allowed}")]
    UnknownWord {
        what: &'static str,
        word: String,
        allowed: &'static str,
    },
    /// A request map with a key its type doesn't have.
    #[error("unknown key `{key}` in a `{kind}` request")]
    UnknownKey { key: String, kind: String },
    /// A request map without a key its type needs.
    #[error("{article} {kind} request needs `{key}`")]
    MissingKey {
        article: &'static str,
        kind: &'static str,
        key: &'static str,
    },
    /// An HTTP method other than GET, POST, PUT, PATCH or DELETE.
    #[error("unsupported HTTP method `{0}`")]
    Method(String),
    /// A value JSON can't hold.
    #[error("a `{0}` can't be written as JSON")]
    NotJson(&'static str),
    /// A rule of the contract's shape, said as the sentence that explains it.
    #[error("{0}")]
    Shape(&'static str),
}

fn err<T>(e: ContractError) -> Result<T, ContractError> {
    Err(e)
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
    err(ContractError::WrongType {
        key: what.to_string(),
        expected: "a string",
        found: v.type_name(),
    })
}

fn plain_of(v: &Dynamic, what: &str) -> Result<String, ContractError> {
    let t = text_of(v, what)?;
    match t.plain() {
        Some(p) => Ok(p),
        None => err(ContractError::SecretNotAllowed(what.to_string())),
    }
}

fn pairs(v: &Dynamic, what: &str) -> Result<Vec<(String, SecretText)>, ContractError> {
    let Some(map) = v.read_lock::<Map>() else {
        return err(ContractError::WrongType {
            key: what.to_string(),
            expected: "a map",
            found: v.type_name(),
        });
    };
    map.iter()
        .filter(|(_, v)| !v.is_unit())
        .map(|(k, v)| Ok((k.to_string(), text_of(v, &format!("{what}.{k}"))?)))
        .collect()
}
