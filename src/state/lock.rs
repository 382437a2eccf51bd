//! The state directory's owner: one driftd at a time (an exclusive lock on `DIR/lock`,
//! held for the daemon's life and released by the kernel when it dies), and the check
//! that the directory is still the one it locked. Two daemons on one directory overwrite
//! each other's checkpoint; a directory deleted under a daemon takes its writes into
//! unlinked files. Both lose window reports without a word, so both are refused or
//! repaired here.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

/// The lock on a state directory, while held. The lock file holds the owner's pid while it
/// runs and is emptied when it stops in order: a pid found there at start is a run that
/// ended without stopping (killed, or crashed: librdkafka 2.12.1 crashes in its own
/// thread when a subscribed topic is deleted, confluentinc/librdkafka#4964, #5093, #5280,
/// and a fault in its threads cannot be caught: they block every signal).
#[derive(Debug)]
pub struct StateLock {
    dir: PathBuf,
    /// Held open (read-only): the lock lasts as long as the file does.
    _file: File,
    /// The lock file's device and inode: the directory is still ours while its `lock`
    /// names this file.
    id: (u64, u64),
    /// The pid of the last owner, when it ended without stopping in order.
    pub unclean_end: Option<u32>,
}

/// Why a state directory cannot be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{dir} is in use by another driftd ({holder}): give each daemon (and each replica) a state directory of its own")]
    InUse { dir: String, holder: String },
    #[error("cannot lock {path}: {error}")]
    Io { path: String, error: std::io::Error },
}

impl StateLock {
    /// Takes `dir` (creating it), or says which process holds it.
    pub fn acquire(dir: &Path) -> Result<StateLock, LockError> {
        let path = dir.join("lock");
        let io = |error| LockError::Io { path: path.display().to_string(), error };
        std::fs::create_dir_all(dir).map_err(io)?;
        if !path.exists() {
            std::fs::OpenOptions::new().write(true).create(true).truncate(false).open(&path).map_err(io)?;
        }
        // the lock is held on a read-only handle: a file open for writing would keep the
        // file system from being remounted read-only (an operator's, or a failing disk's)
        let mut file = File::open(&path).map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                let holder = if holder.is_empty() { "pid unknown".to_string() } else { format!("pid {holder}") };
                return Err(LockError::InUse { dir: dir.display().to_string(), holder });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let mut before = String::new();
        let _ = file.read_to_string(&mut before);
        let unclean_end = before.trim().parse::<u32>().ok().filter(|pid| *pid != std::process::id());
        // who holds it, for the next one's error (the lock, not this text, is what counts)
        let _ = std::fs::OpenOptions::new().write(true).truncate(true).open(&path).and_then(|mut w| {
            writeln!(w, "{}", std::process::id())?;
            w.sync_all()
        });
        let meta = file.metadata().map_err(io)?;
        Ok(StateLock { dir: dir.to_path_buf(), _file: file, id: (meta.dev(), meta.ino()), unclean_end })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the directory still holds this lock's file (false: it was deleted or
    /// replaced under the daemon).
    pub fn intact(&self) -> bool {
        std::fs::metadata(self.dir.join("lock")).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    /// After [`StateLock::intact`] said no: the directory made again and locked anew.
    /// Fails when another driftd took the new directory meanwhile.
    pub fn retake(&mut self) -> Result<(), LockError> {
        let mut taken = StateLock::acquire(&self.dir)?;
        taken.unclean_end = None;
        *self = taken;
        Ok(())
    }
}

impl Drop for StateLock {
    /// Stopped in order: the next start finds no pid (an unclean end leaves one). The
    /// file is emptied only while it is still this lock's (not one made since at its path).
    fn drop(&mut self) {
        if self.intact() {
            let _ = std::fs::OpenOptions::new().write(true).truncate(true).open(self.dir.join("lock"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_owner_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = StateLock::acquire(&state).unwrap();
        let err = StateLock::acquire(&state).unwrap_err().to_string();
        assert!(
            err.contains("in use by another driftd") && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        assert_eq!(StateLock::acquire(&state).unwrap().unclean_end, None, "stopped in order");
        // a run that ended without stopping left its pid
        std::fs::write(state.join("lock"), "4242\n").unwrap();
        assert_eq!(StateLock::acquire(&state).unwrap().unclean_end, Some(4242));
    }

    #[test]
    fn a_directory_deleted_under_its_owner_is_noticed_and_taken_again() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let mut lock = StateLock::acquire(&state).unwrap();
        assert!(lock.intact());
        std::fs::remove_dir_all(&state).unwrap();
        assert!(!lock.intact());
        lock.retake().unwrap();
        assert!(lock.intact() && state.join("lock").is_file());
    }
}
