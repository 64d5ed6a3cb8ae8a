//! The host: performs the requests plugins describe — HTTP with reqwest (rustls), email with
//! lettre, standard output — with connect and total timeouts, secret substitution, the
//! one-host rule and HMAC signing, and turns the result into an `Outcome`. It must not
//! decide retries or fallback (that is `dispatch`) and never logs secrets or bodies.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use rhai::{Dynamic, Map};
use sha2::Sha256;

use super::contract::{
    Body, EmailRequest, HttpRequest, Message, Method, Outcome, Request, Response,
};
use super::grant::Grant;
use super::lane::ScriptLane;
use super::registry::Plugin;
use super::sandbox::Sandbox;
use super::secret::{SecretStore, SecretText};
use crate::clock::{Clock, SystemClock};

/// Timeouts for performing a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    pub connect: Duration,
    pub total: Duration,
}

impl Timeouts {
    /// The defaults, with the total overridden by a channel's `timeout` (typed at load).
    pub(crate) fn for_channel(timeout: Option<Duration>) -> Self {
        let mut t = Self::default();
        if let Some(total) = timeout.filter(|d| !d.is_zero()) {
            t.total = total;
            t.connect = t.connect.min(total);
        }
        t
    }
}

/// kithd's HTTP client settings: these timeouts, no redirects, its user agent.
pub(crate) fn client_builder(timeouts: Timeouts) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.total)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("kithd/", env!("CARGO_PKG_VERSION")))
}

impl Timeouts {
    /// The shorter of each pair.
    pub(crate) fn min(self, other: Timeouts) -> Timeouts {
        Timeouts {
            connect: self.connect.min(other.connect),
            total: self.total.min(other.total),
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            total: Duration::from_secs(20),
        }
    }
}

/// Largest response body read back from a gateway.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

/// Performs plugin requests.
#[derive(Clone)]
pub(crate) struct Host {
    http: reqwest::Client,
    /// Clients for channels that pin their server's certificate (`tls_sha256`), by pin.
    pinned: Arc<std::sync::Mutex<BTreeMap<String, reqwest::Client>>>,
    secrets: Arc<SecretStore>,
    timeouts: Timeouts,
    clock: Arc<dyn Clock>,
}

pub(crate) use super::grant::is_loopback;

/// What a message goes out through: a channel's (or a gateway's) plugin, its settings and
/// grant, and the lane its script calls run in.
pub(crate) struct Via<'a> {
    pub sandbox: &'a Arc<Sandbox>,
    pub plugin: &'a Arc<Plugin>,
    pub settings: &'a Map,
    pub lane: &'a Arc<ScriptLane>,
    pub grant: &'a Grant,
}

fn permanent(reason: impl Into<String>) -> Outcome {
    Outcome::Permanent {
        reason: reason.into(),
    }
}

fn retry(reason: impl Into<String>) -> Outcome {
    Outcome::Retry {
        after: None,
        reason: reason.into(),
    }
}

impl Host {
    pub(crate) fn new(secrets: SecretStore, timeouts: Timeouts) -> Self {
        let http = client_builder(timeouts)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            pinned: Arc::default(),
            secrets: Arc::new(secrets),
            timeouts,
            clock: Arc::new(SystemClock),
        }
    }

    /// Reads time from `clock` instead of the system clock.
    pub(crate) fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Asks the plugin what to send and performs it. Plugin errors are permanent for this
    /// channel (a broken script won't fix itself by retrying). Script calls run on the
    /// blocking pool, at most as many at once per channel as its `lane` allows, so a slow
    /// plugin can't stall the timer, other channels or the answer server.
    pub(crate) async fn deliver(&self, via: &Via<'_>, message: &Message) -> Outcome {
        self.deliver_when(via, message, std::future::ready(Some(())))
            .await
            .unwrap_or_else(|| permanent("not sent"))
    }

    /// As `deliver`, performing the request only once `ready` gives what it holds (a send
    /// slot) until the gateway has answered: the request is made first, before the due
    /// instant when the delivery was claimed ahead. `None`, sending nothing, when `ready`
    /// gives nothing (the claim's lease ended meanwhile).
    pub(crate) async fn deliver_when<G: Send>(
        &self,
        via: &Via<'_>,
        message: &Message,
        ready: impl std::future::Future<Output = Option<G>>,
    ) -> Option<Outcome> {
        let request = {
            let (sb, p, m, s) = (
                via.sandbox.clone(),
                via.plugin.clone(),
                message.clone(),
                via.settings.clone(),
            );
            via.lane.run(move || p.send(&sb, &m, &s)).await
        };
        let slot = ready.await?;
        let outcome = self.perform(request, via, message).await;
        drop(slot);
        // Reasons go to the log and the ledger: no gateway echo of the message text, nor
        // of a secret this channel holds (a gateway may quote the key it was sent).
        let scrub = |reason: &str| {
            let mut reason = super::contract::scrub_reason(reason, &message.text);
            for name in &via.grant.secrets {
                if let Ok(secret) = self.secrets.get(name) {
                    reason = super::contract::withhold_secret(&reason, secret.expose());
                }
            }
            reason
        };
        Some(match outcome {
            Outcome::Retry { after, reason } => Outcome::Retry {
                after,
                reason: scrub(&reason),
            },
            Outcome::Permanent { reason } => Outcome::Permanent {
                reason: scrub(&reason),
            },
            o => o,
        })
    }

    async fn perform(
        &self,
        request: Option<Result<Request, super::PluginError>>,
        via: &Via<'_>,
        message: &Message,
    ) -> Outcome {
        let Via {
            sandbox,
            plugin,
            settings,
            lane,
            grant,
        } = *via;
        let request = match request {
            Some(Ok(r)) => r,
            Some(Err(e)) => return permanent(format!("plugin error: {e}")),
            None => return permanent("plugin error: the script call was abandoned"),
        };
        match request {
            Request::Skip => Outcome::Skipped,
            Request::Stdout(text) => {
                use std::io::Write;
                let mut out = std::io::stdout().lock();
                match writeln!(out, "{text}").and_then(|_| out.flush()) {
                    Ok(()) => Outcome::Sent { gateway_id: None },
                    Err(e) => retry(format!("can't write to standard output: {e}")),
                }
            }
            Request::Email(mail) => self.email(mail, message, settings, grant).await,
            Request::Http(req) => match self.http(req, settings, grant).await {
                Ok(response) if !plugin.classifies() => response.default_outcome(),
                Ok(response) => {
                    let (sb, p, m, s) = (
                        sandbox.clone(),
                        plugin.clone(),
                        message.clone(),
                        settings.clone(),
                    );
                    match lane.run(move || p.classify(&sb, &response, &m, &s)).await {
                        Some(Ok(o)) => o,
                        Some(Err(e)) => permanent(format!("plugin error in on_response: {e}")),
                        None => permanent("plugin error in on_response: the call was abandoned"),
                    }
                }
                Err(outcome) => outcome,
            },
        }
    }

    /// A client that accepts only the certificate with this SHA-256 (made once per pin).
    fn pinned_client(&self, pin: &str) -> Result<reqwest::Client, String> {
        let mut clients = self.pinned.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = clients.get(pin) {
            return Ok(c.clone());
        }
        let pins = super::pinned_tls::Pins::new(Some(pin), None)?.ok_or("`tls_sha256` is empty")?;
        let client = client_builder(self.timeouts)
            .use_preconfigured_tls(pins.client_config())
            .build()
            .map_err(|e| format!("can't set up the pinned TLS client: {e}"))?;
        clients.insert(pin.to_string(), client.clone());
        Ok(client)
    }

    /// Resolves a text's secrets, each of which the channel's grant must allow.
    fn resolve(&self, t: &SecretText, grant: &Grant) -> Result<String, Outcome> {
        grant.check_secrets(t).map_err(permanent)?;
        t.resolve(&self.secrets)
            .map_err(|e| permanent(e.to_string()))
    }

    /// Performs an HTTP request; `Err` carries the outcome of a failure before a response.
    pub(crate) async fn http(
        &self,
        req: HttpRequest,
        settings: &Map,
        grant: &Grant,
    ) -> Result<Response, Outcome> {
        // Where it may go is decided before any secret is resolved.
        grant.destination(&req.url).map_err(permanent)?;
        let url = url::Url::parse(&self.resolve(&req.url, grant)?)
            .map_err(|_| permanent("bad request URL"))?;
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
        };
        let timeouts = Timeouts::for_channel(grant.timeout).min(self.timeouts);
        let client = match settings
            .get("tls_sha256")
            .and_then(|v| v.clone().into_string().ok())
        {
            None => self.http.clone(),
            Some(pin) => self.pinned_client(&pin).map_err(permanent)?,
        };
        let mut builder = client.request(method, url).timeout(timeouts.total);
        for (k, v) in &req.headers {
            builder = builder.header(k.as_str(), self.resolve(v, grant)?);
        }
        if let Some((u, p)) = &req.basic_auth {
            builder = builder.basic_auth(self.resolve(u, grant)?, Some(self.resolve(p, grant)?));
        }
        if let Some(b) = &req.bearer {
            builder = builder.bearer_auth(self.resolve(b, grant)?);
        }
        let (content_type, bytes): (Option<&str>, Vec<u8>) = match &req.body {
            Body::None => (None, Vec::new()),
            Body::Form(pairs) => {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    ser.append_pair(k, &self.resolve(v, grant)?);
                }
                (
                    Some("application/x-www-form-urlencoded"),
                    ser.finish().into_bytes(),
                )
            }
            Body::Json(v) => (
                Some("application/json"),
                serde_json::to_vec(v).unwrap_or_default(),
            ),
            Body::Text { content_type, text } => {
                (Some(content_type.as_str()), text.clone().into_bytes())
            }
        };
        if let Some(sign) = &req.sign {
            let key = self.resolve(&sign.key, grant)?;
            let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes())
                .map_err(|_| permanent("bad signing key"))?;
            mac.update(&bytes);
            let sig = hex::encode(mac.finalize().into_bytes());
            builder = builder.header(sign.header.as_str(), format!("{}{sig}", sign.prefix));
        }
        if let Some(ct) = content_type {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, ct)
                .body(bytes);
        }
        let mut resp = builder
            .send()
            .await
            .map_err(|e| classify_reqwest(&e, timeouts))?;
        let status = resp.status().as_u16();
        let headers: BTreeMap<String, String> = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(c)) => {
                    let room = MAX_RESPONSE_BODY.saturating_sub(body.len());
                    body.extend_from_slice(&c[..c.len().min(room)]);
                    if room <= c.len() {
                        break;
                    }
                }
                Ok(None) => break,
                // The status is what counts; a body cut short still classifies.
                Err(_) => break,
            }
        }
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            received: self.clock.now(),
        })
    }

    /// Sends an email through the channel's SMTP settings.
    pub(crate) async fn email(
        &self,
        mail: EmailRequest,
        message: &Message,
        settings: &Map,
        grant: &Grant,
    ) -> Outcome {
        match self.email_inner(mail, message, settings, grant).await {
            Ok(o) | Err(o) => o,
        }
    }

    async fn email_inner(
        &self,
        mail: EmailRequest,
        message: &Message,
        settings: &Map,
        grant: &Grant,
    ) -> Result<Outcome, Outcome> {
        use lettre::transport::smtp::authentication::{Credentials, Mechanism};
        use lettre::transport::smtp::client::{Tls, TlsParameters};
        use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

        let get =
            |k: &str| -> Option<Dynamic> { settings.get(k).filter(|v| !v.is_unit()).cloned() };
        let text = |k: &str| -> Result<Option<String>, Outcome> {
            match get(k) {
                None => Ok(None),
                Some(v) => match v.clone().try_cast::<SecretText>() {
                    Some(t) => self.resolve(&t, grant).map(Some),
                    None => Ok(Some(v.to_string())),
                },
            }
        };
        let timeouts = Timeouts::for_channel(grant.timeout).min(self.timeouts);
        let host = text("host")?.ok_or_else(|| permanent("smtp: `host` is not set"))?;
        let port = get("port").and_then(|p| p.as_int().ok()).unwrap_or(587);
        let port = u16::try_from(port).map_err(|_| permanent("smtp: bad `port`"))?;
        let security = text("security")?.unwrap_or_else(|| "starttls".into());
        let from = text("from")?.ok_or_else(|| permanent("smtp: `from` is not set"))?;

        let pins = super::pinned_tls::Pins::new(
            text("tls_sha256")?.as_deref(),
            text("ca_file")?.as_deref(),
        )
        .map_err(|e| permanent(format!("smtp: {e}")))?;
        let tls = TlsParameters::builder(host.clone());
        let tls = || -> Result<TlsParameters, Outcome> {
            tls.clone()
                .build_rustls()
                .map_err(|e| permanent(format!("smtp: TLS setup failed: {e}")))
        };
        let tls_mode = match security.as_str() {
            "starttls" => Tls::Required(tls()?),
            "tls" => Tls::Wrapper(tls()?),
            "none" if is_loopback(&host) => Tls::None,
            "none" => {
                return Err(permanent(
                    "smtp: `security = \"none\"` is allowed only for a relay on loopback",
                ));
            }
            other => return Err(permanent(format!("smtp: unknown `security` `{other}`"))),
        };
        let credentials = match (text("username")?, text("password")?) {
            (Some(user), Some(pass)) => Some(Credentials::new(user, pass)),
            _ => None,
        };
        let email = build_email(&from, &mail, message)?;
        if let (Some(pins), false) = (&pins, matches!(tls_mode, Tls::None)) {
            let starttls = matches!(tls_mode, Tls::Required(_));
            let session = pinned_session(&host, port, starttls, pins, credentials, &email);
            return match tokio::time::timeout(timeouts.total, session).await {
                Err(_) => Err(retry(format!(
                    "smtp: {NO_ANSWER} {}s",
                    timeouts.total.as_secs()
                ))),
                Ok(r) => r,
            };
        }
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls_mode)
            .timeout(Some(timeouts.total));
        if let Some(c) = credentials {
            transport = transport
                .credentials(c)
                .authentication(vec![Mechanism::Plain, Mechanism::Login]);
        }
        let transport = transport.build();

        // lettre's own timeout covers connecting only; bound the whole session.
        match tokio::time::timeout(timeouts.total, transport.send(email)).await {
            Err(_) => Err(retry(format!(
                "smtp: {NO_ANSWER} {}s",
                timeouts.total.as_secs()
            ))),
            Ok(Ok(resp)) => Ok(Outcome::Sent {
                gateway_id: resp
                    .message()
                    .next()
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty()),
            }),
            Ok(Err(e)) => {
                let detail = e.to_string();
                if e.is_permanent() {
                    Err(permanent(format!("smtp: rejected: {detail}")))
                } else if e.is_transient() || e.is_timeout() {
                    Err(retry(format!("smtp: temporary failure: {detail}")))
                } else if e.is_tls() || detail.contains("certificate") {
                    Err(permanent(format!(
                        "smtp: TLS failed (set `ca_file` for a private CA): {detail}"
                    )))
                } else {
                    Err(retry(format!("smtp: {detail}")))
                }
            }
        }
    }
}

/// The email as lettre builds it (Date, Message-ID from the delivery id, UTF-8 text).
fn build_email(
    from: &str,
    mail: &EmailRequest,
    message: &Message,
) -> Result<lettre::Message, Outcome> {
    use lettre::message::header::ContentType;
    let from_box: lettre::message::Mailbox = from
        .parse()
        .map_err(|e| permanent(format!("smtp: bad `from` address: {e}")))?;
    let to_box: lettre::message::Mailbox = mail
        .to
        .parse()
        .map_err(|e| permanent(format!("smtp: bad recipient address: {e}")))?;
    let domain = from_box.email.domain().to_string();
    lettre::Message::builder()
        .from(from_box)
        .to(to_box)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}@{domain}>", message.delivery_id)))
        .date_now()
        .header(ContentType::TEXT_PLAIN)
        .body(mail.text.clone())
        .map_err(|e| permanent(format!("smtp: can't build the message: {e}")))
}

/// One SMTP session over a pinned TLS connection: nothing, AUTH included, is sent before
/// the server's certificate matched.
async fn pinned_session(
    host: &str,
    port: u16,
    starttls: bool,
    pins: &super::pinned_tls::Pins,
    credentials: Option<lettre::transport::smtp::authentication::Credentials>,
    email: &lettre::Message,
) -> Result<Outcome, Outcome> {
    use lettre::transport::smtp::authentication::Mechanism;
    use lettre::transport::smtp::client::AsyncSmtpConnection;
    use lettre::transport::smtp::extension::ClientId;
    let stream = super::pinned_tls::connect(host, port, starttls, pins)
        .await
        .map_err(|e| {
            if e.contains("handshake") {
                permanent(e)
            } else {
                retry(e)
            }
        })?;
    let smtp = |e: lettre::transport::smtp::Error| {
        if e.is_permanent() {
            permanent(format!("smtp: rejected: {e}"))
        } else {
            retry(format!("smtp: {e}"))
        }
    };
    let mut conn = AsyncSmtpConnection::connect_with_transport(
        Box::new(stream),
        &ClientId::Domain("kithd".into()),
    )
    .await
    .map_err(smtp)?;
    if let Some(c) = credentials {
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &c)
            .await
            .map_err(smtp)?;
    }
    let resp = conn
        .send(email.envelope(), &email.formatted())
        .await
        .map_err(smtp)?;
    let _ = conn.quit().await;
    Ok(Outcome::Sent {
        gateway_id: resp
            .message()
            .next()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
    })
}

/// How a retry after a request that got no answer in time begins: the gateway may have
/// taken it.
pub(crate) const NO_ANSWER: &str = "no answer within";

fn classify_reqwest(e: &reqwest::Error, t: Timeouts) -> Outcome {
    if e.is_timeout() {
        retry(format!("{NO_ANSWER} {}s", t.total.as_secs()))
    } else if e.is_connect() {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut detail = String::from("can't connect");
        while let Some(s) = source {
            // A certificate that doesn't verify (or match its pin) won't on a retry either.
            let tls = s.downcast_ref::<rustls::Error>().or_else(|| {
                s.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            });
            if let Some(tls) = tls {
                return permanent(format!("TLS failed: {tls}"));
            }
            let said = s.to_string();
            if said.contains("certificate") {
                return permanent(format!("TLS failed: {said}"));
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                detail = format!("can't connect: {}", io.kind());
                if io.kind() == std::io::ErrorKind::ConnectionRefused {
                    detail = "connection refused".into();
                }
            }
            source = s.source();
        }
        retry(detail)
    } else {
        retry(format!(
            "request failed: {}",
            std::error::Error::source(e)
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown error".into())
        ))
    }
}
