//! Secrets: opaque handles a script can place in a request but never read, and the store
//! that resolves them from systemd credentials or the environment when the host performs a
//! request. Must not log, print or serialise a resolved value.

use std::fmt;
use std::path::PathBuf;

/// Text that may contain secret parts. Scripts see it as an opaque `Secret` value whose
/// string form is `[secret]`; only the host resolves it.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretText {
    parts: Vec<Part>,
}

#[derive(Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Secret(String),
}

impl SecretText {
    pub fn named(name: &str) -> Self {
        Self {
            parts: vec![Part::Secret(name.to_string())],
        }
    }

    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Literal(text.into())],
        }
    }

    pub fn concat(mut self, other: SecretText) -> Self {
        self.parts.extend(other.parts);
        self
    }

    pub fn has_secret(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Secret(_)))
    }

    /// Names of the secrets referenced.
    pub fn secret_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Secret(n) => Some(n.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// The plain text, if there is no secret part.
    pub fn plain(&self) -> Option<String> {
        (!self.has_secret()).then(|| {
            self.parts
                .iter()
                .map(|p| match p {
                    Part::Literal(s) => s.as_str(),
                    Part::Secret(_) => "",
                })
                .collect()
        })
    }

    /// Stands for a secret in `shape`.
    pub const HOLE: char = '\u{1}';

    /// The text with each secret replaced by `HOLE`: where the secrets sit, without them.
    pub fn shape(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.clone(),
                Part::Secret(_) => Self::HOLE.to_string(),
            })
            .collect()
    }

    /// Substitutes every secret by `lookup`; the error is the first name it can't resolve.
    pub fn resolve_with(&self, lookup: impl Fn(&str) -> Option<String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Secret(n) => out.push_str(&lookup(n).ok_or_else(|| n.clone())?),
            }
        }
        Ok(out)
    }

    /// Substitutes every secret.
    pub fn resolve(&self, store: &SecretStore) -> Result<String, SecretError> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Secret(n) => out.push_str(store.get(n)?.expose()),
            }
        }
        Ok(out)
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.plain() {
            Some(p) => write!(f, "{p:?}"),
            None => f.write_str("[secret]"),
        }
    }
}

impl fmt::Display for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.plain() {
            Some(p) => f.write_str(&p),
            None => f.write_str("[secret]"),
        }
    }
}

/// A resolved secret value. Its Debug and Display print a redaction.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "secret `{name}` is not set: provide systemd credential `{name}` (LoadCredential=) or environment variable `{env}`"
)]
pub struct SecretError {
    pub name: String,
    pub env: String,
}

/// Resolves secrets from `$CREDENTIALS_DIRECTORY/NAME`, then `KITHD_SECRET_NAME`.
#[derive(Debug, Clone, Default)]
pub struct SecretStore {
    credentials_dir: Option<PathBuf>,
    /// The plan these secrets are for, in a directory of plans: `PLAN/NAME` in the
    /// credentials directory comes before the shared `NAME`.
    plan: Option<String>,
}

impl SecretStore {
    pub fn from_env() -> Self {
        Self {
            credentials_dir: std::env::var_os("CREDENTIALS_DIRECTORY").map(PathBuf::from),
            plan: None,
        }
    }

    /// The secrets of the plan with id `plan` (environment variables stay shared).
    pub fn for_plan(mut self, plan: Option<&str>) -> Self {
        self.plan = plan.map(str::to_string);
        self
    }

    pub fn env_name(name: &str) -> String {
        format!(
            "KITHD_SECRET_{}",
            name.to_ascii_uppercase().replace('-', "_")
        )
    }

    pub fn get(&self, name: &str) -> Result<Secret, SecretError> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        let env = Self::env_name(name);
        if valid {
            // `LoadCredential=kithd:/etc/kithd/credentials` loads a directory, naming each
            // file `kithd_FILE`; a single `LoadCredential=NAME:PATH` keeps NAME.
            if let Some(dir) = &self.credentials_dir {
                let own = self.plan.iter().map(|p| format!("{p}/{name}"));
                for file in own.chain([name.to_string(), format!("kithd_{name}")]) {
                    if let Ok(v) = std::fs::read_to_string(dir.join(file)) {
                        return Ok(Secret(v.trim_end_matches(['\n', '\r']).to_string()));
                    }
                }
            }
            if let Ok(v) = std::env::var(&env) {
                return Ok(Secret(v));
            }
        }
        Err(SecretError {
            name: name.to_string(),
            env,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_text_never_prints_its_secret() {
        let t = SecretText::literal("Bearer ").concat(SecretText::named("tok"));
        assert_eq!(format!("{t} {t:?}"), "[secret] [secret]");
        assert_eq!(SecretText::literal("x").to_string(), "x");
        let s = Secret("hunter2".into());
        assert_eq!(format!("{s:?}"), "Secret([redacted])");
    }

    #[test]
    fn resolves_from_credentials_directory_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tok"), "from-cred\n").unwrap();
        std::fs::write(dir.path().join("kithd_other"), "from-dir").unwrap();
        let store = SecretStore {
            credentials_dir: Some(dir.path().to_path_buf()),
            plan: None,
        };
        let t = SecretText::literal("Bearer ").concat(SecretText::named("tok"));
        assert_eq!(t.resolve(&store).unwrap(), "Bearer from-cred");
        assert_eq!(store.get("other").unwrap().expose(), "from-dir");
        let e = store.get("missing_one").unwrap_err();
        assert_eq!(e.env, "KITHD_SECRET_MISSING_ONE");
        assert!(store.get("../etc/passwd").is_err());
        // A plan's own secret comes before the shared one; another plan's is not seen.
        std::fs::create_dir(dir.path().join("robin")).unwrap();
        std::fs::write(dir.path().join("robin/tok"), "robin's").unwrap();
        let robin = store.clone().for_plan(Some("robin"));
        assert_eq!(robin.get("tok").unwrap().expose(), "robin's");
        assert_eq!(robin.get("other").unwrap().expose(), "from-dir", "shared");
        let sam = store.for_plan(Some("sam"));
        assert_eq!(sam.get("tok").unwrap().expose(), "from-cred");
    }
}
