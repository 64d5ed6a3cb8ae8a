//! `alert_on`: which answers the person wants their contacts told about (a low mood, a
//! skipped dose), as the plan spells it and as the ledger keeps it on each firing, so that
//! whichever way the answer comes in (a link, an SMS, `kithd ack`) the ledger decides the
//! same. Must not know about contacts or messages.

use super::Kind;

/// An answer that escalates instead of cancelling the escalation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum AlertOn {
    /// A check-in answered with a mood of at most this (1–5).
    MoodAtMost(u8),
    /// A dose answered `skipped`.
    Skipped,
}

impl AlertOn {
    /// Reads the plan's spelling for an item of `kind`: `mood <= N` or `mood < N` for a
    /// check-in, `skipped` for a dose.
    pub(crate) fn parse(text: &str, kind: Kind) -> Option<Self> {
        let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let t = t.to_ascii_lowercase();
        match kind {
            Kind::Checkin => {
                let (n, below) = match (t.strip_prefix("mood<="), t.strip_prefix("mood<")) {
                    (Some(n), _) => (n, false),
                    (None, Some(n)) => (n, true),
                    _ => return None,
                };
                let n: u8 = n.parse().ok()?;
                let at_most = if below { n.checked_sub(1)? } else { n };
                (1..=4)
                    .contains(&at_most)
                    .then_some(AlertOn::MoodAtMost(at_most))
            }
            Kind::Medication => (t == "skipped").then_some(AlertOn::Skipped),
            _ => None,
        }
    }

    /// How the ledger keeps it.
    pub(crate) fn key(&self) -> String {
        match self {
            AlertOn::MoodAtMost(n) => format!("mood<={n}"),
            AlertOn::Skipped => "skipped".into(),
        }
    }

    /// Reads the ledger's spelling back (`None` for anything else, such as a newer
    /// kithd's: the answer then cancels the escalation, as without `alert_on`).
    pub(crate) fn from_key(key: &str) -> Option<Self> {
        match key {
            "skipped" => Some(AlertOn::Skipped),
            _ => key
                .strip_prefix("mood<=")?
                .parse()
                .ok()
                .filter(|n| (1..=4).contains(n))
                .map(AlertOn::MoodAtMost),
        }
    }

    /// Whether an answer's stored value (`1`–`5`, `ok`, `taken`, `skipped`) is one the
    /// person wants their contacts told about.
    pub(crate) fn heard(&self, value: &str) -> bool {
        match self {
            AlertOn::MoodAtMost(n) => value.parse::<u8>().is_ok_and(|v| (1..=*n).contains(&v)),
            AlertOn::Skipped => value == "skipped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_and_answers() {
        let low = AlertOn::parse("mood <= 2", Kind::Checkin).unwrap();
        assert_eq!(low, AlertOn::MoodAtMost(2));
        assert_eq!(AlertOn::parse("Mood < 3", Kind::Checkin), Some(low));
        assert_eq!(AlertOn::from_key(&low.key()), Some(low));
        assert!(low.heard("1") && low.heard("2"));
        assert!(!low.heard("3") && !low.heard("ok") && !low.heard("5"));
        for bad in [
            "mood <= 5",
            "mood < 1",
            "mood <= 0",
            "mood >= 2",
            "low",
            "skipped",
        ] {
            assert_eq!(AlertOn::parse(bad, Kind::Checkin), None, "{bad}");
        }
        let skipped = AlertOn::parse("skipped", Kind::Medication).unwrap();
        assert!(skipped.heard("skipped") && !skipped.heard("taken"));
        assert_eq!(AlertOn::from_key(&skipped.key()), Some(skipped));
        assert_eq!(AlertOn::parse("mood <= 2", Kind::Medication), None);
        assert_eq!(AlertOn::from_key("mood<=9"), None);
    }
}
