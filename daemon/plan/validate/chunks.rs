//! Big plans, one item table at a time: the plan's text is split at its top-level
//! `[[checkin]]`-style headers, the rest (person, contacts, channels, …) is parsed as one
//! small document with the items blanked out (so every byte offset stays where it was), and
//! each item is parsed on its own when its turn comes, its spans moved to where the item
//! sits in the file. The whole file's parse tree never exists at once. Anything this
//! splitter can't vouch for (multi-line strings, sub-tables of items, a syntax error
//! anywhere) makes the caller validate the whole document instead, so the diagnostics are
//! the same either way (a test checks that on the corpus).

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::super::{Kind, Loaded, PluginCatalog};
use crate::diagnostic::Diagnostic;

/// Plans smaller than this are parsed whole (the common case: one person's plan).
pub(super) const CHUNK_MIN: usize = crate::plan::LARGE_PLAN_BYTES;

/// One item: its kind and where its `[[kind]]` table is in the file.
pub(super) type Segment = (Kind, Range<usize>);

/// The plan's text with the items blanked out, and the items in file order; `None` when
/// the text has anything the split could misread.
pub(super) fn split(src: &str) -> Option<(String, Vec<Segment>)> {
    if src.contains("\"\"\"") || src.contains("'''") {
        return None;
    }
    let mut head = String::with_capacity(src.len());
    let mut segments: Vec<Segment> = Vec::new();
    // The open item, if any: its kind and where it starts.
    let mut open: Option<(Kind, usize)> = None;
    let mut at = 0;
    for line in src.split_inclusive('\n') {
        let start = at;
        at += line.len();
        let t = line.trim_start();
        if t.starts_with('[') {
            if let Some((kind, from)) = open.take() {
                segments.push((kind, from..start));
            }
            if let Some(rest) = t.strip_prefix("[[") {
                let name = rest.split("]]").next().unwrap_or("").trim();
                if let Some(kind) = Kind::ALL.into_iter().find(|k| k.as_str() == name) {
                    open = Some((kind, start));
                    blank(&mut head, line);
                    continue;
                }
            }
            // A sub-table of an item kind (`[checkin.x]`) belongs to the previous item.
            let name = t
                .trim_start_matches('[')
                .split([']', '.'])
                .next()
                .unwrap_or("")
                .trim();
            if Kind::ALL.iter().any(|k| k.as_str() == name) {
                return None;
            }
        }
        match open {
            Some(_) => blank(&mut head, line),
            None => head.push_str(line),
        }
    }
    if let Some((kind, from)) = open {
        segments.push((kind, from..src.len()));
    }
    Some((head, segments))
}

/// Spaces for a line's bytes, its line break kept (offsets and line numbers stay put).
fn blank(head: &mut String, line: &str) {
    let body = line.trim_end_matches(['\n', '\r']);
    head.extend(std::iter::repeat_n(' ', body.len()));
    head.push_str(&line[body.len()..]);
}

/// Parses one item's text; its table with every span moved by `offset`. `None` on any
/// syntax error, or if the text is not exactly one `[[kind]]` table.
pub(super) fn item<'s>(src: &'s str, kind: Kind, offset: usize) -> Option<Spanned<DeValue<'s>>> {
    let (doc, errors) = DeTable::parse_recoverable(src);
    if !errors.is_empty() {
        return None;
    }
    let mut doc = doc.into_inner();
    if doc.len() != 1 {
        return None;
    }
    let key = doc.keys().next()?.clone();
    if key.get_ref().as_ref() != kind.as_str() {
        return None;
    }
    let DeValue::Array(arr) = doc.remove(&key)?.into_inner() else {
        return None;
    };
    if arr.len() != 1 {
        return None;
    }
    Some(shift(arr.into_iter().next()?, offset))
}

fn moved(span: Range<usize>, by: usize) -> Range<usize> {
    span.start + by..span.end + by
}

fn shift(v: Spanned<DeValue<'_>>, by: usize) -> Spanned<DeValue<'_>> {
    let span = moved(v.span(), by);
    let value = match v.into_inner() {
        DeValue::Array(arr) => DeValue::Array(arr.into_iter().map(|e| shift(e, by)).collect()),
        DeValue::Table(t) => DeValue::Table(shift_table(t, by)),
        other => other,
    };
    Spanned::new(span, value)
}

fn shift_table(t: DeTable<'_>, by: usize) -> DeTable<'_> {
    let mut out = DeTable::new();
    for (k, v) in t {
        let key = Spanned::new(moved(k.span(), by), k.into_inner());
        out.insert(key, shift(v, by));
    }
    out
}

/// The big-plan path (see `chunks`); `None` when the whole document must be read instead.
pub(super) fn validate(
    src: &str,
    catalog: &dyn PluginCatalog,
) -> Option<Result<Loaded, Vec<Diagnostic>>> {
    let (head, segments) = split(src)?;
    let (doc, syntax) = DeTable::parse_recoverable(&head);
    if !syntax.is_empty() {
        return None;
    }
    let mut doc = doc.into_inner();
    let kind_key = |k: &Spanned<toml::de::DeString>| {
        Kind::ALL
            .iter()
            .any(|kind| kind.as_str() == k.get_ref().as_ref())
    };
    if doc.keys().any(kind_key) {
        return None;
    }
    let mut v = super::Validator::new(src);
    v.segments = Some(segments);
    let plan = v.plan(&mut doc, catalog);
    if v.chunk_failed {
        return None;
    }
    Some(v.finish(plan))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::super::validate_with;
    use crate::plan::testing::AnyPlugin;

    fn plans() -> Vec<PathBuf> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut out = vec![root.join("config/example.toml")];
        for dir in ["tests/corpus", "tests/fixtures"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    out.push(p.join("plan.toml"));
                } else if p.extension().is_some_and(|x| x == "toml") {
                    out.push(p);
                }
            }
        }
        out.retain(|p| p.exists());
        out.sort();
        out
    }

    /// What a validation produced, comparable: the item ids in order and every
    /// diagnostic, or the diagnostics of a failure.
    fn outcome(src: &str, chunk_min: usize) -> Result<(Vec<String>, String), String> {
        match validate_with(src, &AnyPlugin, chunk_min) {
            Ok(l) => Ok((
                l.plan
                    .items
                    .iter()
                    .map(|i| format!("{}@{:?}", i.id, i.span))
                    .collect(),
                format!("{:?}", l.warnings),
            )),
            Err(d) => Err(format!("{d:?}")),
        }
    }

    #[test]
    fn one_item_at_a_time_gives_what_the_whole_document_gives() {
        let mut chunked = 0;
        let plans = plans();
        assert!(plans.len() > 40, "{plans:?}");
        for path in plans {
            let src = std::fs::read_to_string(&path).unwrap();
            assert_eq!(
                outcome(&src, 0),
                outcome(&src, usize::MAX),
                "{}",
                path.display()
            );
            if super::validate(&src, &AnyPlugin).is_some() {
                chunked += 1;
            }
        }
        // The one-item-at-a-time path must really be taken, not always declined.
        assert!(
            chunked > 30,
            "only {chunked} plans were read one item at a time"
        );
    }

    #[test]
    fn what_the_split_cannot_vouch_for_goes_the_whole_way() {
        let base = "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n\n[channels.c]\nplugin = \"console\"\n\n";
        for tail in [
            "[[checkin]]\nid = \"a\"\ncron = \"0 8 * * *\"\nmessage = \"\"\"two\n[lines]\"\"\"\n",
            "[[checkin]]\nid = \"a\"\ncron = \"0 8 * * *\"\nmessage = \"x\"\n[checkin.extra]\nk = 1\n",
            "checkin = 5\n",
            "[[checkin]]\nid = \"a\"\ncron = \"0 8 * * *\"\nto = [\n[\"self\"]\n]\nmessage = \"x\"\n",
        ] {
            let src = format!("{base}{tail}");
            assert_eq!(outcome(&src, 0), outcome(&src, usize::MAX), "{tail}");
        }
    }
}
