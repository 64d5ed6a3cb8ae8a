//! The state directory, safely: created 0700; refused when another user can write to it
//! (tightened, with a warning, when kithd owns it); files in it opened without following
//! symlinks; and the daemon's lock taken on the ledger file itself, so that deleting a lock
//! file can't let a second daemon in. The directory itself may be a symlink (systemd's
//! `DynamicUser=` makes `/var/lib/kithd` one). Must not run queries.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// `O_NOFOLLOW`: opening a symlink fails (ELOOP) instead of following it.
pub(crate) const NOFOLLOW: i32 = libc::O_NOFOLLOW;

fn my_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Creates the directory (0700) or checks an existing one. Returns a warning to log when
/// it had to tighten the directory's mode.
pub(crate) fn prepare(dir: &Path) -> Result<Option<String>, StoreError> {
    let io = |source| StoreError::StateDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io)?;
    let meta = std::fs::metadata(dir).map_err(io)?;
    let mode = meta.mode() & 0o777;
    if mode & 0o022 == 0 {
        return Ok(None);
    }
    if Some(meta.uid()) == my_uid() {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        return Ok(Some(format!(
            "The state directory `{}` was writable by others (mode {mode:o}); it is now 0700.",
            dir.display()
        )));
    }
    Err(StoreError::Insecure {
        path: dir.to_path_buf(),
        message: format!(
            "it is writable by others (mode {mode:o}) and belongs to another user; make it 0700 and owned by the user kithd runs as"
        ),
    })
}

/// Opens (creating, 0600) a file in the state directory without following a symlink.
pub(crate) fn open_file(path: &Path, write: bool) -> Result<File, StoreError> {
    let mut o = OpenOptions::new();
    o.read(true).custom_flags(NOFOLLOW);
    if write {
        o.write(true).create(true).truncate(false).mode(0o600);
    }
    o.open(path).map_err(|e| refuse_symlink(path, e))
}

/// A planted symlink is a clear error; other failures are the usual open errors.
pub(crate) fn refuse_symlink(path: &Path, e: std::io::Error) -> StoreError {
    if e.raw_os_error() == Some(libc::ELOOP) || is_symlink(path) {
        StoreError::Insecure {
            path: path.to_path_buf(),
            message: "it is a symbolic link; kithd never follows links inside its state directory"
                .into(),
        }
    } else if e.kind() == std::io::ErrorKind::PermissionDenied
        || e.raw_os_error() == Some(libc::EROFS)
    {
        StoreError::ReadOnly(path.to_path_buf())
    } else {
        StoreError::Open {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

fn is_symlink(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// SQLite's companions of the ledger must not be symlinks either.
pub(crate) fn check_companions(db: &Path) -> Result<(), StoreError> {
    for suffix in ["-wal", "-shm", "-journal"] {
        let p = PathBuf::from(format!("{}{suffix}", db.display()));
        if is_symlink(&p) {
            return Err(StoreError::Insecure {
                path: p,
                message:
                    "it is a symbolic link; kithd never follows links inside its state directory"
                        .into(),
            });
        }
    }
    Ok(())
}

/// Takes the daemon's lock on the ledger file itself (flock, which SQLite's own POSIX
/// locks don't touch). The file must stay open for the daemon's lifetime.
pub(crate) fn lock(db: File, dir: &Path) -> Result<File, StoreError> {
    if db.try_lock().is_err() {
        return Err(StoreError::Locked(dir.to_path_buf()));
    }
    Ok(db)
}

/// Whether a daemon holds the lock on this state directory's ledger now.
pub(crate) fn locked(dir: &Path, db_file: &str) -> bool {
    match open_file(&dir.join(db_file), false) {
        Ok(f) => f.try_lock_shared().is_err(),
        Err(_) => false,
    }
}

/// Writes a small file in the state directory (0600), through a temporary file that is
/// opened without following symlinks and then renamed over the old one.
pub(crate) fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(&tmp)?;
    f.write_all(bytes)?;
    std::fs::rename(tmp, dir.join(name))
}
