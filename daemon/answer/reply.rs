//! The answer vocabulary: "OK" or a mood 1–5 for a check-in, "taken" or "skipped" for a
//! dose, as typed in an SMS reply, chosen on the answer page or given to `kithd ack`.
use crate::vocab::Kind;

/// An answer to a check-in or a dose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Mood(u8),
    Taken,
    Skipped,
}

impl Answer {
    /// The stored form: `ok`, `1`…`5`, `taken`, `skipped`.
    pub fn as_value(&self) -> String {
        match self {
            Answer::Ok => "ok".into(),
            Answer::Mood(m) => m.to_string(),
            Answer::Taken => "taken".into(),
            Answer::Skipped => "skipped".into(),
        }
    }

    /// Whether this answer fits an item of `kind` (a check-in or a dose).
    pub fn fits(&self, kind: Kind) -> bool {
        self.kind() == kind
    }

    /// The kind of item this answer answers.
    pub fn kind(&self) -> Kind {
        match self {
            Answer::Ok | Answer::Mood(_) => Kind::Checkin,
            Answer::Taken | Answer::Skipped => Kind::Medication,
        }
    }
}

/// Reads an answer ("OK", "3", "TAKEN", "skipped", "I'm ok"), case-insensitively.
pub fn parse_answer(text: &str) -> Option<Answer> {
    let t = text
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_lowercase();
    match t.as_str() {
        "ok" | "okay" | "i'm ok" | "im ok" | "i am ok" | "fine" | "yes" => Some(Answer::Ok),
        "taken" | "took it" | "done" => Some(Answer::Taken),
        "skipped" | "skip" => Some(Answer::Skipped),
        _ => t
            .parse::<u8>()
            .ok()
            .filter(|m| (1..=5).contains(m))
            .map(Answer::Mood),
    }
}

/// How long a snooze lasts unless the person says.
pub const DEFAULT_SNOOZE: chrono::Duration = chrono::Duration::minutes(30);

/// Reads a snooze request ("SNOOZE", "snooze 1h", "Snooze 45m"): `Some(delay)`, or `None`
/// when the text is not one. A delay that can't be read, or is under a minute or over a day,
/// is not a snooze either (so it is not mistaken for one).
pub fn parse_snooze(text: &str) -> Option<chrono::Duration> {
    let t = text
        .trim()
        .trim_end_matches(['.', '!'])
        .to_ascii_lowercase();
    let rest = t.strip_prefix("snooze")?.trim();
    if rest.is_empty() {
        return Some(DEFAULT_SNOOZE);
    }
    let d = crate::vocab::PlanDuration::parse(rest).ok()?.to_chrono();
    (chrono::Duration::minutes(1) <= d && d <= chrono::Duration::days(1)).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_replies() {
        assert_eq!(parse_answer(" OK "), Some(Answer::Ok));
        assert_eq!(parse_answer("3"), Some(Answer::Mood(3)));
        assert_eq!(parse_answer("TAKEN"), Some(Answer::Taken));
        assert_eq!(parse_answer("Skipped."), Some(Answer::Skipped));
        assert_eq!(parse_answer("6"), None);
        assert_eq!(parse_answer("what?"), None);
        assert!(Answer::Mood(2).fits(Kind::Checkin) && !Answer::Taken.fits(Kind::Checkin));
        assert_eq!(parse_snooze("SNOOZE"), Some(DEFAULT_SNOOZE));
        assert_eq!(
            parse_snooze(" snooze 1h "),
            Some(chrono::Duration::hours(1))
        );
        assert_eq!(
            parse_snooze("Snooze 45m."),
            Some(chrono::Duration::minutes(45))
        );
        for no in ["snooze forever", "snooze 10s", "snooze 2d", "snoozed", "ok"] {
            assert_eq!(parse_snooze(no), None, "{no}");
        }
    }
}
