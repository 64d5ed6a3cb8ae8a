//! The plan's `language` (a BCP 47 tag) and the reply words kithd understands in it:
//! what a person may text back for "OK", "taken", "skipped" and "snooze". English words are
//! always understood as well. Data and a syntax check only.

/// The language of a plan that says none.
pub(crate) const DEFAULT_LANGUAGE: &str = "en";

/// The words that mean each reply, lower-case.
#[derive(Debug)]
pub(crate) struct ReplyWords {
    pub(crate) ok: &'static [&'static str],
    pub(crate) taken: &'static [&'static str],
    pub(crate) skipped: &'static [&'static str],
    /// Each may be followed by a duration (`snooze 1h`, `später 1h`).
    pub(crate) snooze: &'static [&'static str],
}

const WORDS: &[(&str, ReplyWords)] = &[
    (
        "en",
        ReplyWords {
            ok: &[
                "ok", "okay", "i'm ok", "im ok", "i am ok", "i'm okay", "fine", "i'm fine", "yes",
                "good", "all good",
            ],
            taken: &["taken", "took it", "done", "i took it"],
            skipped: &["skipped", "skip", "missed", "didn't take it"],
            snooze: &["snooze", "later"],
        },
    ),
    (
        "de",
        ReplyWords {
            ok: &[
                "gut",
                "mir geht's gut",
                "mir gehts gut",
                "alles gut",
                "passt",
                "ja",
            ],
            taken: &["genommen", "eingenommen", "erledigt"],
            skipped: &["ausgelassen", "übersprungen", "nicht genommen", "vergessen"],
            snooze: &["später", "spaeter"],
        },
    ),
    (
        "fr",
        ReplyWords {
            ok: &["ça va", "ca va", "bien", "oui", "je vais bien", "d'accord"],
            taken: &["pris", "je l'ai pris", "fait"],
            skipped: &["sauté", "saute", "pas pris", "oublié", "oublie"],
            snooze: &["plus tard"],
        },
    ),
    (
        "es",
        ReplyWords {
            ok: &["bien", "estoy bien", "sí", "si", "vale"],
            taken: &["tomada", "tomado", "la tomé", "la tome", "hecho"],
            skipped: &["saltada", "saltado", "no la tomé", "no la tome", "olvidada"],
            snooze: &["luego", "más tarde", "mas tarde"],
        },
    ),
    (
        "it",
        ReplyWords {
            ok: &["bene", "sto bene", "sì", "si", "va bene"],
            taken: &["presa", "preso", "l'ho presa", "fatto"],
            skipped: &["saltata", "saltato", "non presa", "dimenticata"],
            snooze: &["dopo", "più tardi", "piu tardi"],
        },
    ),
    (
        "nl",
        ReplyWords {
            ok: &["goed", "het gaat goed", "ja", "prima"],
            taken: &["genomen", "ingenomen", "gedaan"],
            skipped: &["overgeslagen", "niet genomen", "vergeten"],
            snooze: &["later", "straks"],
        },
    ),
];

/// The languages with reply words, by primary tag.
pub(crate) const REPLY_LANGUAGES: &[&str] = &["en", "de", "fr", "es", "it", "nl"];

/// The reply words for `tag` (by its primary language: `de-AT` reads German words).
pub(crate) fn reply_words(tag: &str) -> Option<&'static ReplyWords> {
    let primary = tag.split('-').next()?.to_ascii_lowercase();
    WORDS.iter().find(|(l, _)| *l == primary).map(|(_, w)| w)
}

/// English: always understood, whatever the plan's language.
pub(crate) fn english() -> &'static ReplyWords {
    &WORDS[0].1
}

/// Whether `s` is a well-formed BCP 47 language tag of the common shape: a 2–3 letter
/// ISO 639 language (the longer forms BCP 47 reserves are not in use), then subtags of 1–8 letters or digits (`en`, `de-AT`, `zh-Hant-TW`).
pub(crate) fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let lang_ok = parts
        .next()
        .is_some_and(|l| matches!(l.len(), 2 | 3) && l.chars().all(|c| c.is_ascii_alphabetic()));
    lang_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_words() {
        for ok in ["en", "de-AT", "pt-BR", "zh-Hant-TW", "gsw"] {
            assert!(is_language_tag(ok), "{ok}");
        }
        for no in [
            "",
            "e",
            "German",
            "english!",
            "de_AT",
            "de-",
            "de-toolongsubtag",
        ] {
            assert!(!is_language_tag(no), "{no}");
        }
        assert!(reply_words("de-AT").unwrap().taken.contains(&"genommen"));
        assert!(reply_words("ja").is_none());
        assert_eq!(REPLY_LANGUAGES.len(), WORDS.len());
        assert!(WORDS.iter().zip(REPLY_LANGUAGES).all(|((l, _), r)| l == r));
    }
}
