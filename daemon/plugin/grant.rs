//! What one channel may use: the secrets its own plan settings name, how long a request may
//! take, and the one origin (scheme, host and port) its requests may go to, taken from the plan's settings (a
//! plugin's `defaults()` supplies it only when the plan names none, and can never widen
//! it). Must not resolve a secret or perform a request.

use std::net::IpAddr;

use rhai::{Dynamic, Map};

use super::secret::SecretText;

/// The settings keys that name where a channel's requests may go, in order of precedence.
pub(crate) const ORIGIN_KEYS: [&str; 4] = ["url", "api_base", "server", "host"];
/// Secrets only kithd itself uses; no channel may name them.
pub(crate) const RESERVED_SECRETS: [&str; 2] = ["answer_key", "inbound_token"];

/// Where requests may go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// One channel's grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// Names of the secrets the channel's plan settings reference.
    pub secrets: Vec<String>,
    /// `None` when neither the plan nor the plugin's defaults name one.
    pub origin: Option<Origin>,
    /// The channel's `timeout`, typed at load.
    pub timeout: Option<std::time::Duration>,
}

impl Grant {
    /// The grant for a channel with these plan settings (as script values) and plugin
    /// defaults. `secrets` are the names the plan settings reference.
    pub fn for_channel(own: &Map, defaults: &Map, secrets: Vec<String>) -> Result<Self, String> {
        let origin = match origin_of(own)? {
            Some(o) => Some(o),
            None => origin_of(defaults)?,
        };
        Ok(Self {
            secrets,
            origin,
            timeout: None,
        })
    }

    /// Whether this channel may use the secret `name`.
    pub fn may_use(&self, name: &str) -> bool {
        !RESERVED_SECRETS.contains(&name) && self.secrets.iter().any(|s| s == name)
    }

    /// Checks every secret a text references against the grant; the error names the
    /// secret, never a value.
    pub fn check_secrets(&self, t: &SecretText) -> Result<(), String> {
        match t.secret_names().find(|n| !self.may_use(n)) {
            None => Ok(()),
            Some(n) => Err(format!(
                "the plugin used secret `{n}`, which this channel's settings don't name; a channel may use only its own secrets"
            )),
        }
    }

    /// Checks where a request may go, without sending it: scheme, host and port of the
    /// channel's origin, over https (plain http only to loopback). A URL whose scheme,
    /// host or port holds a secret is refused before anything is resolved.
    pub fn destination(&self, url: &SecretText) -> Result<(), String> {
        let shape = url.shape();
        let authority_end = shape
            .find("://")
            .map(|i| {
                let rest = &shape[i + 3..];
                i + 3 + rest.find(['/', '?', '#']).unwrap_or(rest.len())
            })
            .unwrap_or(shape.len());
        if shape[..authority_end].contains(SecretText::HOLE) {
            return Err(
                "a secret may not be placed in the request URL's scheme, host or port".into(),
            );
        }
        let url = url::Url::parse(&shape).map_err(|e| format!("bad request URL: {e}"))?;
        let asked = origin_of_url(&url).ok_or_else(|| "the request URL has no host".to_string())?;
        match &self.origin {
            Some(allowed) if *allowed == asked => {}
            Some(allowed) => {
                return Err(format!(
                    "the plugin asked for {asked}, but this channel may only reach {allowed}"
                ));
            }
            None => {
                return Err(
                    "this channel names no host (set `url`, `api_base`, `server` or `host`)".into(),
                );
            }
        }
        match asked.scheme.as_str() {
            "https" => Ok(()),
            "http" if is_loopback(&asked.host) => Ok(()),
            "http" => Err("plain http is allowed only to loopback; use https".into()),
            other => Err(format!("unsupported URL scheme `{other}`")),
        }
    }
}

fn origin_of(settings: &Map) -> Result<Option<Origin>, String> {
    for key in ORIGIN_KEYS {
        let Some(v) = settings.get(key).filter(|v| !v.is_unit()) else {
            continue;
        };
        let Some(text) = plain(v) else {
            return Err(format!(
                "`{key}` decides where this channel's requests go, so it can't be a secret; keep secrets in the path, a header or the body"
            ));
        };
        if key == "host" {
            return Ok(Some(Origin {
                scheme: "https".into(),
                host: text.trim().trim_matches(['[', ']']).to_ascii_lowercase(),
                port: 443,
            }));
        }
        return match url::Url::parse(&text).ok().as_ref().and_then(origin_of_url) {
            Some(o) => Ok(Some(o)),
            None => Err(format!("`{key}` is not a URL with a host")),
        };
    }
    Ok(None)
}

fn plain(v: &Dynamic) -> Option<String> {
    match v.clone().try_cast::<SecretText>() {
        Some(t) => t.plain(),
        None => v.clone().into_string().ok(),
    }
}

fn origin_of_url(u: &url::Url) -> Option<Origin> {
    Some(Origin {
        scheme: u.scheme().to_ascii_lowercase(),
        host: u.host_str()?.trim_matches(['[', ']']).to_ascii_lowercase(),
        port: u.port_or_known_default()?,
    })
}

pub(crate) fn is_loopback(host: &str) -> bool {
    let h = host.trim_matches(['[', ']']);
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Map {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), Dynamic::from(v.to_string())))
            .collect()
    }

    #[test]
    fn the_origin_comes_from_the_plan_and_includes_the_port() {
        let g = Grant::for_channel(
            &map(&[("api_base", "https://API.twilio.com")]),
            &map(&[("url", "https://evil.example.net")]),
            vec![],
        )
        .unwrap();
        let o = g.origin.clone().unwrap();
        assert_eq!(o.to_string(), "https://api.twilio.com:443");
        assert!(
            g.destination(&SecretText::literal("https://api.twilio.com/x"))
                .is_ok()
        );
        let e = g
            .destination(&SecretText::literal("https://api.twilio.com:8443/x"))
            .unwrap_err();
        assert!(
            e.contains("may only reach https://api.twilio.com:443"),
            "{e}"
        );
        assert!(
            g.destination(&SecretText::literal("https://evil.example.net/"))
                .is_err()
        );
        // Only when the plan names none does a default apply.
        let g = Grant::for_channel(&Map::new(), &map(&[("server", "https://ntfy.sh")]), vec![])
            .unwrap();
        assert_eq!(g.origin.unwrap().host, "ntfy.sh");
        assert!(is_loopback("::1") && is_loopback("127.0.0.1") && is_loopback("localhost"));
    }

    #[test]
    fn secrets_stay_in_their_channel_and_out_of_the_authority() {
        let g = Grant::for_channel(
            &map(&[("url", "https://hooks.example.org")]),
            &Map::new(),
            vec!["hook_key".into(), "answer_key".into()],
        )
        .unwrap();
        assert!(g.may_use("hook_key"));
        assert!(!g.may_use("answer_key") && !g.may_use("other"));
        let host_secret = SecretText::literal("https://").concat(SecretText::named("hook_key"));
        let e = g.destination(&host_secret).unwrap_err();
        assert!(e.contains("scheme, host or port"), "{e}");
        let path_secret =
            SecretText::literal("https://hooks.example.org/").concat(SecretText::named("hook_key"));
        assert!(g.destination(&path_secret).is_ok());
        assert!(
            g.check_secrets(&SecretText::named("other"))
                .unwrap_err()
                .contains("`other`")
        );
        let secret_url: Map = [("url".into(), Dynamic::from(SecretText::named("u")))]
            .into_iter()
            .collect();
        assert!(Grant::for_channel(&secret_url, &Map::new(), vec![]).is_err());
    }
}
