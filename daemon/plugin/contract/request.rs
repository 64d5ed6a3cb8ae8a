//! The request a script's `send` returns (HTTP, email, standard output or nothing), read
//! from the rhai value and checked key by key.

use rhai::{Array, Dynamic, Map};

use super::{ContractError, SecretText, dynamic_to_json, err, pairs, plain_of, text_of};

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

/// Reads the value a script's `send` returned.
pub fn request_from_dynamic(v: Dynamic) -> Result<Request, ContractError> {
    if v.is_unit() {
        return Ok(Request::Skip);
    }
    let Some(map) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return err(ContractError::Returned {
            function: "send",
            expected: "a map or `()`",
            found: v.type_name(),
        });
    };
    let get = |k: &str| map.get(k).filter(|v| !v.is_unit());
    let kind = match get("type") {
        Some(t) => plain_of(t, "type")?,
        None => {
            return err(ContractError::Shape(
                "the request map needs `type`: \"http\", \"email\" or \"stdout\"",
            ));
        }
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
            return err(ContractError::UnknownWord {
                what: "request type",
                word: other.to_string(),
                allowed: "\"http\", \"email\" or \"stdout\"",
            });
        }
    };
    if let Some(k) = map.keys().find(|k| !known.contains(&k.as_str())) {
        return err(ContractError::UnknownKey {
            key: k.to_string(),
            kind,
        });
    }
    match kind.as_str() {
        "stdout" => Ok(Request::Stdout(plain_of(
            get("text").unwrap_or(&Dynamic::from("")),
            "text",
        )?)),
        "email" => {
            let field = |k: &'static str| match get(k) {
                Some(v) => plain_of(v, k),
                None => err(ContractError::MissingKey {
                    article: "an",
                    kind: "email",
                    key: k,
                }),
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
                Some(other) => return err(ContractError::Method(other.to_string())),
            };
            let url = match get("url") {
                Some(u) => text_of(u, "url")?,
                None => {
                    return err(ContractError::MissingKey {
                        article: "an",
                        kind: "http",
                        key: "url",
                    });
                }
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
                return err(ContractError::Shape(
                    "give only one of `form`, `json` or `body`",
                ));
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
                        return err(ContractError::Shape(
                            "`basic_auth` must be `[user, password]`",
                        ));
                    };
                    if arr.len() != 2 {
                        return err(ContractError::Shape(
                            "`basic_auth` must be `[user, password]`",
                        ));
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
                        return err(ContractError::Shape(
                            "`sign` must be a map with `header` and `key`",
                        ));
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
                        _ => return err(ContractError::Shape("`sign` needs `header` and `key`")),
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
