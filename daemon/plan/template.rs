//! Message templates: text with `{placeholder}` fields (`{{` and `}}` for literal braces).
//! Owns parsing and rendering; it must not know which placeholders a kind allows (the
//! validator passes that list in) nor where values come from.

use std::collections::BTreeMap;

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Piece {
    Text(String),
    /// A placeholder name and its byte offset (of the `{`) inside the template text.
    Field(String, usize),
}

/// A parsed message template.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Template {
    pub source: String,
    pub pieces: Vec<Piece>,
}

/// A syntax problem in a template, with the byte offset inside the template text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

impl Template {
    pub fn parse(source: &str) -> Result<Self, TemplateError> {
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    text.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    text.push('}');
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(TemplateError {
                            offset: i,
                            message: "unclosed `{` in message".into(),
                        });
                    }
                    let valid = !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                    if !valid {
                        return Err(TemplateError {
                            offset: i,
                            message: format!("`{{{name}}}` is not a valid placeholder"),
                        });
                    }
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(Piece::Field(name, i));
                }
                '}' => {
                    return Err(TemplateError {
                        offset: i,
                        message: "unmatched `}` in message".into(),
                    });
                }
                c => text.push(c),
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self {
            source: source.to_string(),
            pieces,
        })
    }

    /// Placeholder names with their offsets in the template text.
    pub fn fields(&self) -> impl Iterator<Item = (&str, usize)> {
        self.pieces.iter().filter_map(|p| match p {
            Piece::Field(n, o) => Some((n.as_str(), *o)),
            Piece::Text(_) => None,
        })
    }

    /// Fills the template. A field missing from `values` renders as an empty string (the
    /// validator guarantees every field is known, so this happens only for optional values).
    pub fn render(&self, values: &BTreeMap<&str, String>) -> String {
        let mut out = String::with_capacity(self.source.len() + 32);
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Field(n, _) => {
                    if let Some(v) = values.get(n.as_str()) {
                        out.push_str(v);
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders() {
        let t = Template::parse("Hi {person}, take {dose} of {name} {{now}}").unwrap();
        let fields: Vec<_> = t.fields().collect();
        assert_eq!(fields, vec![("person", 3), ("dose", 18), ("name", 28)]);
        let values = BTreeMap::from([
            ("person", "Ana".to_string()),
            ("dose", "50 mg".to_string()),
            ("name", "sertraline".to_string()),
        ]);
        assert_eq!(t.render(&values), "Hi Ana, take 50 mg of sertraline {now}");
    }

    #[test]
    fn reports_syntax_errors_with_offsets() {
        assert_eq!(Template::parse("a {b").unwrap_err().offset, 2);
        assert_eq!(Template::parse("a } b").unwrap_err().offset, 2);
        assert_eq!(
            Template::parse("x {a b}").unwrap_err().message,
            "`{a b}` is not a valid placeholder"
        );
    }
}
