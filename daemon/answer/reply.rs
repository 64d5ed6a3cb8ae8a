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

/// Reads an answer ("OK", "3", "TAKEN", "skipped", "I'm ok"), case-insensitively, in
/// English.
pub fn parse_answer(text: &str) -> Option<Answer> {
    parse_answer_in(text, crate::vocab::DEFAULT_LANGUAGE)
}

/// Whether a reply asks kithd to stop messaging the sender: the carriers' keywords
/// (`STOP`, `UNSUBSCRIBE`, `CANCEL`, `END`, `QUIT`, `STOPALL`) and common words in the
/// languages kithd reads, as the whole reply, in any case.
pub(crate) fn is_stop(text: &str) -> bool {
    const STOP: &[&str] = &[
        "stop",
        "stopall",
        "unsubscribe",
        "cancel",
        "end",
        "quit",
        "stopp",
        "arret",
        "arrêt",
        "baja",
        "basta",
        "stoppen",
    ];
    STOP.contains(&normalise(text).as_str())
}

/// Whether a contact's reply agrees to an invitation (`YES` and its common words in the
/// languages kithd reads), as the whole reply.
pub(crate) fn is_yes(text: &str) -> bool {
    const YES: &[&str] = &["yes", "y", "yes please", "ja", "oui", "si", "sí", "sì"];
    YES.contains(&normalise(text).as_str())
}

/// The text as a reply: lower-case, typographic apostrophes made plain, and surrounding
/// whitespace and punctuation ("OK!", "\"3\"", "taken :)") taken off.
fn normalise(text: &str) -> String {
    text.replace(['\u{2019}', '\u{2018}'], "'")
        .trim_matches(|c: char| !c.is_alphanumeric())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The word lists to read a reply with: the plan language's, then English.
fn word_lists(language: &str) -> impl Iterator<Item = &'static crate::vocab::ReplyWords> {
    crate::vocab::reply_words(language)
        .into_iter()
        .chain(std::iter::once(crate::vocab::english()))
}

/// Reads an answer in the plan's `language` (its common words, and always English).
pub(crate) fn parse_answer_in(text: &str, language: &str) -> Option<Answer> {
    let t = normalise(text);
    for w in word_lists(language) {
        if w.ok.contains(&t.as_str()) {
            return Some(Answer::Ok);
        }
        if w.taken.contains(&t.as_str()) {
            return Some(Answer::Taken);
        }
        if w.skipped.contains(&t.as_str()) {
            return Some(Answer::Skipped);
        }
    }
    t.parse::<u8>()
        .ok()
        .filter(|m| (1..=5).contains(m))
        .map(Answer::Mood)
}

/// How long a snooze lasts unless the person says.
pub const DEFAULT_SNOOZE: chrono::Duration = chrono::Duration::minutes(30);

/// Reads a snooze request ("SNOOZE", "snooze 1h", "Snooze 45m"): `Some(delay)`, or `None`
/// when the text is not one. A delay that can't be read, or is under a minute or over a day,
/// is not a snooze either (so it is not mistaken for one).
pub fn parse_snooze(text: &str) -> Option<chrono::Duration> {
    parse_snooze_in(text, crate::vocab::DEFAULT_LANGUAGE)
}

/// Reads a snooze request in the plan's `language` ("später 1h") or English.
pub(crate) fn parse_snooze_in(text: &str, language: &str) -> Option<chrono::Duration> {
    let t = normalise(text);
    let rest = word_lists(language)
        .flat_map(|w| w.snooze.iter())
        .find_map(|word| {
            let rest = t.strip_prefix(word)?;
            (rest.is_empty() || rest.starts_with(' ')).then(|| rest.trim())
        })?;
    if rest.is_empty() {
        return Some(DEFAULT_SNOOZE);
    }
    let d = crate::vocab::PlanDuration::parse(rest).ok()?.to_chrono();
    (chrono::Duration::minutes(1) <= d && d <= chrono::Duration::days(1)).then_some(d)
}

/// The short reply to a text that isn't understood: the choices, in English words.
pub(crate) fn choices_reply(kinds_open: &[Kind]) -> String {
    let mut choices = Vec::new();
    if kinds_open.is_empty() || kinds_open.contains(&Kind::Checkin) {
        choices.push("OK or 1-5 (1 = low, 5 = good) for a check-in");
    }
    if kinds_open.is_empty() || kinds_open.contains(&Kind::Medication) {
        choices.push("TAKEN or SKIPPED for a dose");
    }
    format!(
        "kithd didn't understand that. Reply {}, or SNOOZE (SNOOZE 1h) to be reminded later.",
        choices.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_words_are_whole_replies() {
        for yes in [
            "STOP",
            "stop!",
            " Stop ",
            "UNSUBSCRIBE",
            "Stopp",
            "arrêt",
            "quit",
        ] {
            assert!(is_stop(yes), "{yes}");
        }
        for no in ["don't stop", "stopped", "ok", "3", "stop it please"] {
            assert!(!is_stop(no), "{no}");
        }
    }

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

    #[test]
    fn replies_with_punctuation_and_in_the_plan_language() {
        for (text, want) in [
            ("OK!!", Answer::Ok),
            ("  \"ok\"  ", Answer::Ok),
            ("I\u{2019}m OK.", Answer::Ok),
            ("3!", Answer::Mood(3)),
            ("taken :)", Answer::Taken),
            ("Took   it", Answer::Taken),
        ] {
            assert_eq!(parse_answer(text), Some(want), "{text}");
        }
        assert_eq!(parse_answer_in("Genommen!", "de"), Some(Answer::Taken));
        assert_eq!(
            parse_answer_in("nicht genommen", "de-AT"),
            Some(Answer::Skipped)
        );
        assert_eq!(
            parse_answer_in("ok", "de"),
            Some(Answer::Ok),
            "English stays understood"
        );
        assert_eq!(
            parse_answer("genommen"),
            None,
            "German only when the plan says so"
        );
        assert_eq!(parse_answer_in("Ça va", "fr"), Some(Answer::Ok));
        assert_eq!(
            parse_snooze_in("Später 1h", "de"),
            Some(chrono::Duration::hours(1))
        );
        assert_eq!(parse_snooze_in("SNOOZE!", "de"), Some(DEFAULT_SNOOZE));
        assert_eq!(parse_snooze_in("laterally", "en"), None);
        assert!(choices_reply(&[Kind::Medication]).contains("TAKEN or SKIPPED"));
        assert!(!choices_reply(&[Kind::Medication]).contains("1-5"));
    }
}
