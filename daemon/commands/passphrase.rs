//! `kithd passphrase [--remove]`: sets the passphrase that opens the person's own pages
//! (`/me`), read from standard input (twice, without echo, on a terminal). Only its
//! Argon2id hash is kept, in the ledger; setting a new one ends every session. Must not
//! print or log the passphrase.

use std::io::{BufRead, IsTerminal, Write};

use chrono::{DateTime, Utc};

use super::StateDir;
use crate::exit;

/// The shortest passphrase accepted, in characters.
pub(crate) const MIN_CHARS: usize = 8;
/// The longest, in bytes (hashing cost must not depend on what a stranger sends).
pub(crate) const MAX_BYTES: usize = 1024;

pub(crate) fn run(
    state: &StateDir,
    remove: bool,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> exit::Outcome {
    let ledger = state.client()?;
    if remove {
        ledger.set_passphrase(None, now)?;
        let _ = writeln!(out, "passphrase removed: your pages at /me are closed");
        return Ok(exit::OK);
    }
    let bad = |value: &str| exit::Error::BadOption {
        option: "passphrase",
        value: value.to_string(),
        expected: "8 to 1024 characters on standard input, typed the same twice on a terminal",
    };
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let first = read_line(tty, "New passphrase: ").map_err(|_| bad("(unreadable)"))?;
    if tty {
        let again = read_line(tty, "Again: ").map_err(|_| bad("(unreadable)"))?;
        if again != first {
            return Err(bad("(the two differ)"));
        }
    }
    if first.chars().count() < MIN_CHARS || first.len() > MAX_BYTES {
        return Err(bad("(too short or too long)"));
    }
    ledger.set_passphrase(Some(&hash(&first)), now)?;
    let _ = writeln!(
        out,
        "passphrase set: open your pages at /me on the answer server (sessions opened before now are ended)"
    );
    Ok(exit::OK)
}

/// The Argon2id hash (PHC string) of `passphrase`, with a random salt and the crate's
/// recommended cost (19 MiB, 2 passes).
pub(crate) fn hash(passphrase: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    argon2::Argon2::default()
        .hash_password(passphrase.as_bytes(), &SaltString::generate(&mut OsRng))
        .expect("Argon2id hashes any passphrase up to MAX_BYTES")
        .to_string()
}

/// One line of standard input without its line ending; on a terminal, with a prompt on
/// standard error and echo turned off (by `stty`, since the crate forbids `unsafe`).
fn read_line(tty: bool, prompt: &str) -> std::io::Result<String> {
    let stty = |arg: &str| {
        std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status()
    };
    if tty {
        eprint!("{prompt}");
        stty("-echo")?;
    }
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if tty {
        let _ = stty("echo");
        eprintln!();
    }
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}
