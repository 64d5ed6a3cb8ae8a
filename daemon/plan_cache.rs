//! A validated copy of a large plan, kept in the state directory so that a restart with the
//! plan, the plugins and kithd itself unchanged skips parsing and validating it again (for
//! a plan of 1,000,000 items that is most of a start). Owns the file and its key; the
//! encoding is `plan::stored`'s. It must not decide what is valid: a copy is only ever what
//! `plan::load` returned for the very same inputs, and anything else reads as no copy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::plan::{self, Plan, PluginCatalog};

/// The copy's file name in the state directory.
pub const FILE: &str = "plan.cache";
/// Plans smaller than this load in milliseconds: no copy is kept.
pub const MIN_PLAN_BYTES: usize = plan::LARGE_PLAN_BYTES;
/// The file starts with this, then the key, then the SHA-256 of the rest.
const MAGIC: &[u8; 8] = b"KITHDPC1";
const HEADER: usize = MAGIC.len() + 32 + 32;

type Key = [u8; 32];

/// What a copy is the copy of: kithd's own build, the plugins as validation sees them (the
/// catalog is all it reads of them), and the plan's text.
fn key(text: &str, catalog: &dyn PluginCatalog) -> Option<Key> {
    use std::os::unix::fs::MetadataExt;
    let exe = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
    let mut h = Sha256::new();
    h.update(MAGIC);
    h.update(env!("CARGO_PKG_VERSION"));
    h.update(exe.len().to_le_bytes());
    h.update(exe.mtime().to_le_bytes());
    h.update(exe.mtime_nsec().to_le_bytes());
    h.update(exe.ino().to_le_bytes());
    let mut names = catalog.names();
    names.sort();
    for name in names {
        let info = format!("{name}\0{:?}\0", catalog.lookup(&name));
        h.update((info.len() as u64).to_le_bytes());
        h.update(info);
    }
    h.update(text);
    Some(h.finalize().into())
}

/// A copy to write once the plan is known to run (the plan's text is no longer needed).
pub struct Pending {
    dir: PathBuf,
    key: Key,
}

impl Pending {
    /// Writes the copy on a thread of its own: a first start does not wait for it.
    pub fn store_later(self, plan: Arc<Plan>, warnings: Vec<Diagnostic>) {
        let spawned = std::thread::Builder::new()
            .name("plan-cache".into())
            .spawn(move || self.store(&plan, &warnings));
        if let Err(e) = spawned {
            warn!(error = %e, "Could not start writing the plan's validated copy; the next start validates the plan again.");
        }
    }

    /// Writes the copy through a temporary file (mode 0600: the plan is health data)
    /// renamed over the old one, so a copy is whole, or fails its checksum.
    pub fn store(&self, plan: &Plan, warnings: &[Diagnostic]) {
        let Some(mut file) = plan::stored::encode(plan, warnings) else {
            return;
        };
        let digest = Sha256::digest(&file);
        file.splice(0..0, MAGIC.iter().chain(&self.key).chain(&digest).copied());
        // A first start reads the plan before it opens the ledger.
        let written = crate::store::state_dir::prepare(&self.dir)
            .map_err(std::io::Error::other)
            .and_then(|_| crate::store::state_dir::write_file(&self.dir, FILE, &file));
        match written {
            Ok(()) => debug!(bytes = file.len(), "Kept a validated copy of the plan."),
            Err(e) => {
                warn!(error = %e, dir = %self.dir.display(), "Could not keep a validated copy of the plan; the next start validates it again.");
            }
        }
    }
}

/// `plan::load`, or the copy kept in `dir` when it is the copy of this very plan. For a
/// large plan read afresh, also what keeps a copy of it once it is known to run.
pub fn load(
    dir: Option<&Path>,
    source: &SourceFile,
    catalog: &dyn PluginCatalog,
) -> (Result<plan::Loaded, Vec<Diagnostic>>, Option<Pending>) {
    let pending = dir
        .filter(|_| source.text.len() >= MIN_PLAN_BYTES)
        .and_then(|dir| {
            Some(Pending {
                dir: dir.to_path_buf(),
                key: key(&source.text, catalog)?,
            })
        });
    if let Some(p) = &pending
        && let Some(loaded) = read(&p.dir, &p.key)
    {
        debug!(
            items = loaded.plan.items.len(),
            "The plan is unchanged: read its validated copy."
        );
        return (Ok(loaded), None);
    }
    (plan::load(source, catalog), pending)
}

/// The copy in `dir` if it is whole and keyed `key`.
fn read(dir: &Path, key: &Key) -> Option<plan::Loaded> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    crate::store::state_dir::open_file(&dir.join(FILE), false)
        .ok()?
        .read_to_end(&mut bytes)
        .ok()?;
    let (head, body) = bytes.split_at_checked(HEADER)?;
    let (magic, rest) = head.split_at(MAGIC.len());
    let (stored_key, digest) = rest.split_at(32);
    if magic != MAGIC || stored_key != key || digest != Sha256::digest(body).as_slice() {
        return None;
    }
    plan::stored::decode(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::AnyPlugin;

    fn large_plan(n: usize) -> String {
        let mut text = String::from(
            "[person]\nname = \"A\"\ntimezone = \"Europe/Berlin\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n",
        );
        while text.len() < MIN_PLAN_BYTES {
            let i = text.len();
            text.push_str(&format!(
                "[[checkin]]\nid = \"c{i}\"\ncron = \"0 {} 9 * * *\"\nmessage = \"Hello, how is today going?\"\n\n",
                i % 60
            ));
        }
        text.push_str(&format!(
            "[[checkin]]\nid = \"last\"\nat = \"10:{n:02}\"\nmessage = \"Hi\"\n"
        ));
        text
    }

    /// Loads `source` afresh and keeps its copy in `dir`.
    fn kept(dir: &Path, source: &SourceFile) -> plan::Loaded {
        let (first, pending) = load(Some(dir), source, &AnyPlugin);
        let first = first.unwrap();
        let pending = pending.expect("a large plan read afresh keeps a copy");
        pending.store(&first.plan, &first.warnings);
        first
    }

    #[test]
    fn a_large_plan_is_read_from_its_copy_only_while_nothing_changed() {
        let dir = tempfile::tempdir().unwrap();
        let source = SourceFile::new("p.toml", large_plan(1));
        let first = kept(dir.path(), &source);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        // Unchanged: the copy, and nothing more to keep.
        let (again, pending) = load(Some(dir.path()), &source, &AnyPlugin);
        assert!(pending.is_none(), "read from the copy");
        let again = again.unwrap();
        assert_eq!(again.plan.items.len(), first.plan.items.len());
        assert_eq!(
            format!("{:?}", again.plan.items),
            format!("{:?}", first.plan.items)
        );
        // One character changed: read afresh, and a new copy is due.
        let changed = SourceFile::new("p.toml", large_plan(2));
        let (fresh, pending) = load(Some(dir.path()), &changed, &AnyPlugin);
        assert!(pending.is_some(), "a changed plan is read afresh");
        let fresh = fresh.unwrap();
        let last = fresh.plan.item("last").unwrap();
        assert!(format!("{:?}", last.schedule).contains("10:02"));
    }

    #[test]
    fn a_damaged_or_foreign_copy_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let source = SourceFile::new("p.toml", large_plan(1));
        kept(dir.path(), &source);
        let path = dir.path().join(FILE);
        let good = std::fs::read(&path).unwrap();
        for damage in [HEADER - 1, HEADER + 10, good.len() - 1] {
            let mut bad = good.clone();
            bad[damage] ^= 1;
            std::fs::write(&path, &bad).unwrap();
            let (_, pending) = load(Some(dir.path()), &source, &AnyPlugin);
            assert!(pending.is_some(), "damage at byte {damage} was not noticed");
        }
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        assert!(load(Some(dir.path()), &source, &AnyPlugin).1.is_some());
    }

    #[test]
    fn small_plans_keep_no_copy() {
        let dir = tempfile::tempdir().unwrap();
        let text = "[person]\nname = \"A\"\ntimezone = \"UTC\"\nreach = [\"c\"]\n[channels.c]\nplugin = \"console\"\n";
        let (loaded, pending) = load(
            Some(dir.path()),
            &SourceFile::new("p.toml", text),
            &AnyPlugin,
        );
        assert!(loaded.is_ok());
        assert!(pending.is_none());
    }
}
