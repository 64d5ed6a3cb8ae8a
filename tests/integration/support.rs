//! Test harness: runs the real binary, locates project files, and blesses golden files
//! when `KITHD_BLESS=1`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kithd")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn blessing() -> bool {
    std::env::var_os("KITHD_BLESS").is_some_and(|v| v == "1")
}

/// Runs `kithd ARGS` in `dir` with an empty plugin search path unless given.
pub fn kithd(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("CREDENTIALS_DIRECTORY")
        .env("HOME", "/nonexistent-home")
        .env_remove("XDG_CONFIG_HOME")
        .output()
        .expect("run kithd")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Compares `actual` with the golden file, or writes it when blessing.
pub fn golden(path: &Path, actual: &str) -> Result<(), String> {
    if blessing() {
        std::fs::write(path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(path).map_err(|e| format!("{}: {e} (run with KITHD_BLESS=1 to create)", path.display()))?;
    if expected == actual {
        Ok(())
    } else {
        Err(format!("{} differs\n--- expected\n{expected}\n--- actual\n{actual}", path.display()))
    }
}
