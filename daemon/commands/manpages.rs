//! `kithd manpages DIR` (hidden, for packaging): kithd(1) and kithd-SUBCOMMAND(1) from the
//! command-line definition (clap_mangen), and kithd-plan(5) from the plan reference
//! (`config/README.md`, compiled in), so neither can drift from what it documents. Must not
//! know what any command does.

use std::path::Path;

use crate::exit;

/// The plan reference, the one source of kithd-plan(5).
const PLAN_REFERENCE: &str = include_str!("../../config/README.md");

/// Writes every page into `dir`, laid out as a man directory (`man1/`, `man5/`).
pub(crate) fn run(cli: clap::Command, dir: &Path) -> exit::Outcome {
    let io = |source| exit::Error::Setup {
        what: "can't write the man pages",
        source,
    };
    let (man1, man5) = (dir.join("man1"), dir.join("man5"));
    std::fs::create_dir_all(&man1).map_err(io)?;
    std::fs::create_dir_all(&man5).map_err(io)?;
    let mut pages = vec![("kithd".to_string(), cli.clone())];
    for sub in cli.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("kithd-{}", sub.get_name());
        let bin = format!("kithd {}", sub.get_name());
        for nested in sub.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{name}-{}", nested.get_name());
            let bin = format!("{bin} {}", nested.get_name());
            pages.push((name.clone(), nested.clone().name(name).bin_name(bin)));
        }
        pages.push((name.clone(), sub.clone().name(name).bin_name(bin)));
    }
    for (name, page) in pages {
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf).map_err(io)?;
        std::fs::write(man1.join(format!("{name}.1")), buf).map_err(io)?;
    }
    let version = env!("CARGO_PKG_VERSION");
    std::fs::write(
        man5.join("kithd-plan.5"),
        plan_page(PLAN_REFERENCE, version),
    )
    .map_err(io)?;
    Ok(exit::OK)
}

/// Renders the plan reference (headings, paragraphs, lists, tables, code blocks: the
/// Markdown it uses) as a roff man page.
pub(crate) fn plan_page(markdown: &str, version: &str) -> String {
    let mut out = format!(
        ".TH KITHD-PLAN 5 \"\" \"kithd {version}\" \"File Formats\"\n.SH NAME\nkithd-plan \\- the kithd support plan (TOML)\n"
    );
    let mut in_code = false;
    let mut header_row = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            out.push_str(if in_code { ".fi\n.RE\n" } else { ".RS\n.nf\n" });
            in_code = !in_code;
            continue;
        }
        if in_code {
            out.push_str(&escape_line(line));
            out.push('\n');
            continue;
        }
        let t = line.trim_end();
        if let Some(h) = t.strip_prefix("# ") {
            out.push_str(&format!(".SH DESCRIPTION\n{}\n", inline(h)));
        } else if let Some(h) = t.strip_prefix("## ") {
            out.push_str(&format!(
                ".SH \"{}\"\n",
                inline(h).to_uppercase().replace('"', "")
            ));
        } else if let Some(h) = t.strip_prefix("### ") {
            out.push_str(&format!(".SS \"{}\"\n", inline(h).replace('"', "")));
        } else if t.starts_with('|') {
            let cells: Vec<&str> = t.trim_matches('|').split('|').map(str::trim).collect();
            if cells
                .iter()
                .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
            {
                continue;
            }
            // The first row of a table names its columns; the rows after it are entries.
            if !header_row {
                header_row = true;
                continue;
            }
            let (key, rest) = cells.split_first().unwrap_or((&"", &[]));
            out.push_str(&format!(".TP\n{}\n", inline(key)));
            let rest: Vec<String> = rest.iter().map(|c| inline(c)).collect();
            out.push_str(&rest.join(": "));
            out.push('\n');
        } else if let Some(item) = t.strip_prefix("- ") {
            out.push_str(&format!(".IP \\(bu 2\n{}\n", inline(item)));
        } else if t.is_empty() {
            header_row = false;
            out.push_str(".PP\n");
        } else {
            out.push_str(&inline(t.trim_start()));
            out.push('\n');
        }
    }
    out.push_str(".SH SEE ALSO\nkithd(1), kithd-check(1), kithd-preview(1), kithd-run(1)\n");
    out
}

/// A line of running text: roff's special characters escaped, `code` in bold, *emphasis*
/// in italics.
fn inline(s: &str) -> String {
    let mut out = String::new();
    let mut code = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                out.push_str(if code { "\\fR" } else { "\\fB" });
                code = !code;
            }
            '*' if !code && chars.peek() != Some(&' ') => out.push_str("\\fI"),
            '*' if !code => out.push('*'),
            '\\' => out.push_str("\\e"),
            '-' => out.push_str("\\-"),
            _ => out.push(c),
        }
    }
    if code {
        out.push_str("\\fR");
    }
    let out = out.replace("\\fI\\fI", "\\fI");
    // Closing emphasis: a second `*` of a pair also produced `\fI`; turn pairs into on/off.
    let mut fixed = String::new();
    for (i, part) in out.split("\\fI").enumerate() {
        if i > 0 {
            fixed.push_str(if i % 2 == 1 { "\\fI" } else { "\\fR" });
        }
        fixed.push_str(part);
    }
    escape_start(&fixed)
}

/// A code line kept as is, escaped for roff.
fn escape_line(s: &str) -> String {
    escape_start(&s.replace('\\', "\\e"))
}

/// A line starting with `.` or `'` would be read as a request.
fn escape_start(s: &str) -> String {
    if s.starts_with('.') || s.starts_with('\'') {
        format!("\\&{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_reference_renders_as_a_man_page() {
        let page = plan_page(PLAN_REFERENCE, "0.1.0");
        assert!(page.starts_with(".TH KITHD-PLAN 5"));
        assert!(page.contains(".SH \"TOP LEVEL\"\n"));
        assert!(page.contains(".TP\n\\fBversion\\fR\ninteger: optional; must be \\fB1\\fR\n"));
        // No line may start a roff request by accident.
        for line in page.lines().filter(|l| l.starts_with('.')) {
            let req = line[1..].split_whitespace().next().unwrap_or("");
            assert!(
                ["TH", "SH", "SS", "PP", "TP", "IP", "RS", "RE", "nf", "fi"].contains(&req),
                "{line}"
            );
        }
    }
}
