//! Signed answer links: a token names one firing and recipient, expires, carries a random
//! nonce (so the ledger can make it single-use) and is signed with HMAC-SHA256. Tokens can't
//! be forged without the key; verification compares in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

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

    /// The plan a token says it answers, read before its signature is checked (only to
    /// pick the plan whose key checks it): `None` for a single plan's links or garbage.
    pub fn plan_of(token: &str) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Plan {
            p: Option<String>,
        }
        let payload = token.get(..1024.min(token.len()))?.split_once('.')?.0;
        let bytes = B64.decode(payload).ok()?;
        serde_json::from_slice::<Plan>(&bytes).ok()?.p
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

    fn mac(&self) -> Hmac<Sha256> {
        Self::mac_with(&self.key)
    }

    fn mac_with(key: &[u8]) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length")
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

    /// Where a contact opens their link.
    pub fn contact_url(&self, token: &str) -> String {
        format!("{}/c/{token}", self.public_url)
    }

    /// Signs raw payload bytes into a token. `token` builds the payload; fuzzing uses this
    /// to reach the claims decoder behind the signature check.
    pub fn sign(&self, payload: &[u8]) -> String {
        let payload = B64.encode(payload);
        let mut mac = self.mac();
        mac.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(mac.finalize().into_bytes()))
    }

    pub fn url(&self, token: &str) -> String {
        format!("{}/a/{token}", self.public_url)
    }

    /// Checks signature and expiry (not single use: that is the ledger's job).
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        if token.len() > 1024 {
            return Err(TokenError::Malformed);
        }
        let (payload, sig) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let keys = std::iter::once(self.key.as_slice()).chain(
            self.previous
                .iter()
                .filter(|(_, until)| *until >= now)
                .map(|(k, _)| k.as_slice()),
        );
        let mut genuine = false;
        for key in keys {
            let mut mac = Self::mac_with(key);
            mac.update(payload.as_bytes());
            genuine |= mac.verify_slice(&sig).is_ok();
        }
        if !genuine {
            return Err(TokenError::BadSignature);
        }
        let bytes = B64.decode(payload).map_err(|_| TokenError::Malformed)?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
        // Another plan's link, even one signed with the same key, answers nothing here.
        if claims.p != self.plan {
            return Err(TokenError::BadSignature);
        }
        if now.timestamp() > claims.e {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
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
        assert_eq!(LinkSigner::plan_of(&token).as_deref(), Some("robin"));
        assert_eq!(
            robin.verify(&token, now).unwrap().p.as_deref(),
            Some("robin")
        );
        // Another plan with the same key, and a single plan's signer, refuse it.
        let sky = signer().in_plan(Some("sky"));
        assert_eq!(sky.verify(&token, now), Err(TokenError::BadSignature));
        assert_eq!(signer().verify(&token, now), Err(TokenError::BadSignature));
        // A single plan's links name no plan, and another plan's signer refuses them.
        let single = signer().token("mood", now, "self", now);
        assert_eq!(LinkSigner::plan_of(&single), None);
        assert!(signer().verify(&single, now).is_ok());
        assert_eq!(robin.verify(&single, now), Err(TokenError::BadSignature));
        assert_eq!(LinkSigner::plan_of("garbage"), None);
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
        // Forged: another payload with the same signature, or another key.
        let (p, sig) = t.split_once('.').unwrap();
        let forged_payload =
            B64.encode(br#"{"i":"morning","s":0,"r":"self","e":9999999999,"n":"x"}"#);
        assert_eq!(
            s.verify(&format!("{forged_payload}.{sig}"), now),
            Err(TokenError::BadSignature)
        );
        let other = LinkSigner::new(&[8u8; 32], "https://x", chrono::Duration::hours(1)).unwrap();
        assert_eq!(other.verify(&t, now), Err(TokenError::BadSignature));
        assert_eq!(
            s.verify(&format!("{p}.AAAA"), now),
            Err(TokenError::BadSignature)
        );
        assert_eq!(s.verify("garbage", now), Err(TokenError::Malformed));
        // Expired.
        assert_eq!(
            s.verify(&t, now + chrono::Duration::hours(25)),
            Err(TokenError::Expired)
        );
        assert!(LinkSigner::new(b"short", "https://x", chrono::Duration::hours(1)).is_err());
    }
}
