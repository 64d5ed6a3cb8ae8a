//! Answer links: a token names one firing and recipient, expires, carries a random nonce
//! (so the ledger can make it single-use), and is opaque: its claims are encrypted and
//! authenticated with XChaCha20-Poly1305 under a key derived from the plan's link key, so
//! an item id never shows in an SMS log or a browser's history, and no token can be forged
//! or altered without the key. A token opens with a short tag that tells the answer server
//! which plan's key opens it, derived from that key and the plan id (it says neither).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of the routing tag (8 base64 characters).
const ROUTE_LEN: usize = 6;
/// Bytes of the XChaCha20 nonce.
const NONCE_LEN: usize = 24;
/// The longest token read (claims are about 150 bytes).
const MAX_TOKEN: usize = 1024;

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Claims {
    /// Item id.
    pub i: String,
    /// Scheduled instant of the firing, ms since the epoch.
    pub s: i64,
    /// Recipient id.
    pub r: String,
    /// Expiry, seconds since the epoch.
    pub e: i64,
    /// Random nonce (single use).
    pub n: String,
    /// The plan's id, when it is one of a directory of plans (one answer server serves
    /// them all; the plan's own key verifies the link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
}

/// Signs and verifies answer links.
#[derive(Clone)]
pub struct LinkSigner {
    key: Vec<u8>,
    public_url: String,
    ttl: chrono::Duration,
    /// Keys replaced by a reload, each accepted (never used to sign) until the instant
    /// its last link expires.
    previous: Vec<(Vec<u8>, DateTime<Utc>)>,
    /// The plan the links answer, in a directory of plans.
    plan: Option<String>,
}

impl std::fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSigner")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// The item of a contact's link: not an item id (those can't start with `@`), so a
/// contact's link never answers a check-in, nor an answer link stops a contact.
pub(super) const CONTACT_ITEM: &str = "@contact";
/// How long a contact's link stays valid.
pub(super) const CONTACT_LINK_DAYS: i64 = 30;

/// The item of a session on the person's pages (`/me`): no answer or contact link.
pub(super) const SESSION_ITEM: &str = "@me";
/// A session ends after this long without a request.
pub(crate) const SESSION_IDLE_HOURS: i64 = 12;
/// And after this long in all, however active.
pub(crate) const SESSION_MAX_DAYS: i64 = 7;

/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY_LEN: usize = 32;

impl LinkSigner {
    pub fn new(key: &[u8], public_url: &str, ttl: chrono::Duration) -> Result<Self, String> {
        if key.len() < MIN_KEY_LEN {
            return Err(format!(
                "the answer-link key must be at least {MIN_KEY_LEN} bytes (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(Self {
            key: key.to_vec(),
            public_url: public_url.trim_end_matches('/').to_string(),
            ttl,
            previous: Vec::new(),
            plan: None,
        })
    }

    /// Links that name the plan `id` of a directory of plans.
    #[must_use]
    pub fn in_plan(mut self, id: Option<&str>) -> Self {
        self.plan = id.map(str::to_string);
        self
    }

    /// Whether `token` is meant for this signer's plan (by its routing tag, under the
    /// current key or a replaced one still accepted): only picks the plan whose key then
    /// opens it, and proves nothing.
    pub fn routes(&self, token: &str) -> bool {
        let Some(tag) = token.get(..8) else {
            return false;
        };
        std::iter::once(self.key.as_slice())
            .chain(self.previous.iter().map(|(k, _)| k.as_slice()))
            .any(|k| B64.encode(route_tag(k, self.plan.as_deref())) == tag)
    }

    /// Also accepts (never signs with) links signed with `key`, such as the key before a
    /// rotation: each link still expires by itself.
    #[must_use]
    pub fn accepting(mut self, key: &[u8]) -> Self {
        if key != self.key.as_slice() {
            self.previous.push((key.to_vec(), DateTime::<Utc>::MAX_UTC));
        }
        self
    }

    /// This signer taking over from `old` at `now`: when the key changed, links signed
    /// with the old key stay valid until they expire.
    #[must_use]
    pub fn succeeding(mut self, old: &LinkSigner, now: DateTime<Utc>) -> Self {
        self.previous = old
            .previous
            .iter()
            .filter(|(k, until)| *until >= now && *k != self.key)
            .cloned()
            .collect();
        if old.key != self.key {
            self.previous.push((old.key.clone(), now + old.ttl));
        }
        self
    }

    /// A token for one recipient's answer to one firing, valid from `now` for the TTL.
    pub fn token(
        &self,
        item: &str,
        scheduled: DateTime<Utc>,
        recipient: &str,
        now: DateTime<Utc>,
    ) -> String {
        let claims = Claims {
            i: item.to_string(),
            s: scheduled.timestamp_millis(),
            r: recipient.to_string(),
            e: (now + self.ttl).timestamp(),
            n: hex::encode(rand::random::<[u8; 12]>()),
            p: self.plan.clone(),
        };
        self.sign(&serde_json::to_vec(&claims).unwrap_or_default())
    }

    /// A contact's link (`/c/TOKEN`): to say yes to an invitation or stop kithd's messages,
    /// valid for `CONTACT_LINK_DAYS` (an invitation may wait a while for its answer).
    pub fn contact_token(&self, contact: &str, now: DateTime<Utc>) -> String {
        let claims = Claims {
            i: CONTACT_ITEM.to_string(),
            s: 0,
            r: contact.to_string(),
            e: (now + chrono::Duration::days(CONTACT_LINK_DAYS)).timestamp(),
            n: hex::encode(rand::random::<[u8; 12]>()),
            p: self.plan.clone(),
        };
        self.sign(&serde_json::to_vec(&claims).unwrap_or_default())
    }

    /// A session on the person's pages, sealed like a link: valid for
    /// `SESSION_IDLE_HOURS` from `now` (each request renews it), bound to the passphrase
    /// set at `passphrase_set` (a new one ends it) and to its start `since`.
    pub fn session_token(
        &self,
        passphrase_set: DateTime<Utc>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> String {
        let claims = Claims {
            i: SESSION_ITEM.to_string(),
            s: passphrase_set.timestamp_millis(),
            r: crate::vocab::SELF_ID.to_string(),
            e: (now + chrono::Duration::hours(SESSION_IDLE_HOURS)).timestamp(),
            n: since.timestamp().to_string(),
            p: self.plan.clone(),
        };
        self.sign(&serde_json::to_vec(&claims).unwrap_or_default())
    }

    /// When a genuine session for the passphrase set at `passphrase_set` started, if it is
    /// still within its idle and total limits.
    pub fn session(
        &self,
        token: &str,
        passphrase_set: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        let c = self.verify(token, now).ok()?;
        let since = DateTime::from_timestamp(c.n.parse().ok()?, 0)?;
        (c.i == SESSION_ITEM
            && c.s == passphrase_set.timestamp_millis()
            && now - since <= chrono::Duration::days(SESSION_MAX_DAYS)
            && since <= now)
            .then_some(since)
    }

    /// Where a contact opens their link.
    pub fn contact_url(&self, token: &str) -> String {
        format!("{}/c/{token}", self.public_url)
    }

    /// Seals raw payload bytes into a token. `token` builds the payload; fuzzing uses this
    /// to reach the claims decoder behind the authentication check.
    pub fn sign(&self, payload: &[u8]) -> String {
        let tag = route_tag(&self.key, self.plan.as_deref());
        let nonce: [u8; NONCE_LEN] = rand::random();
        let sealed = cipher(&self.key)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: &tag,
                },
            )
            .expect("XChaCha20-Poly1305 seals any payload that fits in memory");
        let mut bytes = Vec::with_capacity(ROUTE_LEN + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&tag);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        B64.encode(bytes)
    }

    pub fn url(&self, token: &str) -> String {
        format!("{}/a/{token}", self.public_url)
    }

    /// Opens a token and checks its plan and expiry (not single use: that is the
    /// ledger's job).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        if token.len() > MAX_TOKEN {
            return Err(TokenError::Malformed);
        }
        let bytes = B64.decode(token).map_err(|_| TokenError::Malformed)?;
        if bytes.len() < ROUTE_LEN + NONCE_LEN + 16 {
            return Err(TokenError::Malformed);
        }
        let (tag, rest) = bytes.split_at(ROUTE_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let keys = std::iter::once(self.key.as_slice()).chain(
            self.previous
                .iter()
                .filter(|(_, until)| *until >= now)
                .map(|(k, _)| k.as_slice()),
        );
        let mut opened = None;
        for key in keys {
            // The tag is bound to the plan: another plan's link, even one sealed with the
            // same key, opens nothing here.
            let expected = route_tag(key, self.plan.as_deref());
            let aad = if bool::from(subtle::ConstantTimeEq::ct_eq(&expected[..], tag)) {
                tag
            } else {
                continue;
            };
            if let Ok(plain) =
                cipher(key).decrypt(XNonce::from_slice(nonce), Payload { msg: sealed, aad })
            {
                opened = Some(plain);
                break;
            }
        }
        let plain = opened.ok_or(TokenError::BadSignature)?;
        let claims: Claims = serde_json::from_slice(&plain).map_err(|_| TokenError::Malformed)?;
        if claims.p != self.plan {
            return Err(TokenError::BadSignature);
        }
        if now.timestamp() > claims.e {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// `key` under a purpose: HMAC-SHA256 as a key-derivation step, so the sealing key and the
/// routing tag are independent of each other and of the key's other uses.
fn derive(key: &[u8], purpose: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    for part in purpose {
        mac.update(part);
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().into()
}

fn cipher(key: &[u8]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&derive(key, &[b"kithd answer link v2"]).into())
}

/// The routing tag of `plan`'s links sealed with `key`.
fn route_tag(key: &[u8], plan: Option<&str>) -> [u8; ROUTE_LEN] {
    let full = derive(
        key,
        &[b"kithd link route v2", plan.unwrap_or_default().as_bytes()],
    );
    full[..ROUTE_LEN].try_into().expect("32 bytes hold 6")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> LinkSigner {
        LinkSigner::new(
            &[7u8; 32],
            "https://kithd.example.org/",
            chrono::Duration::hours(24),
        )
        .unwrap()
    }

    #[test]
    fn links_name_their_plan_and_answer_only_there() {
        let now = Utc::now();
        let robin = signer().in_plan(Some("robin"));
        let token = robin.token("mood", now, "self", now);
        assert!(robin.routes(&token));
        assert_eq!(
            robin.verify(&token, now).unwrap().p.as_deref(),
            Some("robin")
        );
        // Another plan with the same key, and a single plan's signer, refuse it.
        let sky = signer().in_plan(Some("sky"));
        assert_eq!(sky.verify(&token, now), Err(TokenError::BadSignature));
        assert_eq!(signer().verify(&token, now), Err(TokenError::BadSignature));
        assert!(!sky.routes(&token) && !signer().routes(&token));
        // A single plan's links route to it alone, and another plan's signer refuses them.
        let single = signer().token("mood", now, "self", now);
        assert!(signer().routes(&single) && !robin.routes(&single));
        assert!(signer().verify(&single, now).is_ok());
        assert_eq!(robin.verify(&single, now), Err(TokenError::BadSignature));
        assert!(!robin.routes("garbage") && !robin.routes(""));
    }

    #[test]
    fn a_new_key_keeps_old_links_valid_until_they_expire() {
        let now: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let old = signer();
        let link = old.token("mood", now, "self", now);
        let new = LinkSigner::new(
            &[9u8; 32],
            "https://kithd.example.org",
            chrono::Duration::hours(24),
        )
        .unwrap()
        .succeeding(&old, now);
        assert!(new.verify(&link, now + chrono::Duration::hours(23)).is_ok());
        assert!(
            new.verify(&link, now + chrono::Duration::hours(25))
                .is_err()
        );
        let fresh = new.token("mood", now, "self", now);
        assert!(
            old.verify(&fresh, now).is_err(),
            "new links use the new key"
        );
        // A second rotation still honours the first key's links until they expire.
        let newer = LinkSigner::new(
            &[3u8; 32],
            "https://kithd.example.org",
            chrono::Duration::hours(24),
        )
        .unwrap()
        .succeeding(&new, now + chrono::Duration::hours(1));
        assert!(
            newer
                .verify(&link, now + chrono::Duration::hours(2))
                .is_ok()
        );
        assert!(
            newer
                .verify(&fresh, now + chrono::Duration::hours(2))
                .is_ok()
        );
        let forged = LinkSigner::new(&[4u8; 32], "https://x", chrono::Duration::hours(1)).unwrap();
        assert_eq!(
            newer.verify(&forged.token("mood", now, "self", now), now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn sessions_end_when_idle_at_their_limit_or_with_a_new_passphrase() {
        let s = signer();
        let set: DateTime<Utc> = "2026-11-01T08:00:00Z".parse().unwrap();
        let now: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let t = s.session_token(set, now, now);
        assert_eq!(
            s.session(&t, set, now + chrono::Duration::hours(11)),
            Some(now)
        );
        assert_eq!(s.session(&t, set, now + chrono::Duration::hours(13)), None);
        assert_eq!(s.session(&t, now, now), None, "a new passphrase ends it");
        // Renewed each day, it still ends after SESSION_MAX_DAYS.
        let late = now + chrono::Duration::days(SESSION_MAX_DAYS) + chrono::Duration::hours(1);
        let renewed = s.session_token(set, now, late - chrono::Duration::hours(1));
        assert_eq!(s.session(&renewed, set, late), None);
        // An answer link is no session, and a session answers nothing.
        let link = s.token("mood", now, "self", now);
        assert_eq!(s.session(&link, set, now), None);
        assert_eq!(s.verify(&t, now).unwrap().i, SESSION_ITEM);
    }

    #[test]
    fn tokens_say_nothing_readable() {
        let s = signer().in_plan(Some("robin"));
        let now: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let t = s.token("sertraline-evening", now, "self", now);
        let bytes = B64.decode(&t).unwrap();
        for needle in [&b"sertraline"[..], b"robin", b"self", b"\"i\""] {
            assert!(!bytes.windows(needle.len()).any(|w| w == needle));
            assert!(!t.as_bytes().windows(needle.len()).any(|w| w == needle));
        }
        // Two links to the same firing differ (a fresh nonce each).
        assert_ne!(t, s.token("sertraline-evening", now, "self", now));
        assert!(t.len() < 300, "{} characters", t.len());
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = signer();
        let now: DateTime<Utc> = "2026-12-01T08:00:00Z".parse().unwrap();
        let t = s.token("morning", now, "self", now);
        let c = s.verify(&t, now).unwrap();
        assert_eq!(
            (c.i.as_str(), c.r.as_str(), c.s),
            ("morning", "self", now.timestamp_millis())
        );
        assert!(s.url(&t).starts_with("https://kithd.example.org/a/"));
        // Altered in any byte, sealed with another key, or not a token at all.
        let mut bytes = B64.decode(&t).unwrap();
        for i in [0, ROUTE_LEN, ROUTE_LEN + NONCE_LEN, bytes.len() - 1] {
            bytes[i] ^= 1;
            assert_eq!(
                s.verify(&B64.encode(&bytes), now),
                Err(TokenError::BadSignature)
            );
            bytes[i] ^= 1;
        }
        let other = LinkSigner::new(&[8u8; 32], "https://x", chrono::Duration::hours(1)).unwrap();
        assert_eq!(other.verify(&t, now), Err(TokenError::BadSignature));
        assert_eq!(s.verify("garbage", now), Err(TokenError::Malformed));
        assert_eq!(s.verify(&t[..40], now), Err(TokenError::Malformed));
        // Expired.
        assert_eq!(
            s.verify(&t, now + chrono::Duration::hours(25)),
            Err(TokenError::Expired)
        );
        assert!(LinkSigner::new(b"short", "https://x", chrono::Duration::hours(1)).is_err());
    }
}
