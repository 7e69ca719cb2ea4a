//! One appliance per state directory: `printbridge serve` takes an exclusive `flock(2)` on
//! `<state_dir>/printbridge.lock` at start and refuses to run when another process holds it.
//!
//! Two appliances on one directory would each keep their own picture of the spool in memory and
//! list different jobs, and both workers would print from the same documents. flock rather than a
//! PID file: the kernel releases the lock when the holder's last descriptor closes, which a
//! `kill -9`, a crash or a power cut does too, so a lock is never stale and nobody has to guess
//! whether a PID in a file is still ours. The holder's PID is written into the file only to name
//! the other process in the refusal; it is never trusted for anything else.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name inside the state directory.
pub const LOCK_FILE: &str = "printbridge.lock";

/// The longest lock file content read back: a PID and a newline, with room to spare.
const MAX_CONTENT: u64 = 64;

#[derive(Debug, thiserror::Error)]
pub enum StateLockError {
    /// Another process holds the lock: the state directory is in use.
    #[error(
        "another printbridge ({holder}) is already serving the state directory {dir}; stop it \
         first or give this one another state directory (--state-dir)"
    )]
    InUse { dir: PathBuf, holder: Holder },
    #[error("cannot lock the state directory {dir} ({path}): {source}")]
    Io {
        dir: PathBuf,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Who holds the lock, as far as its file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    Pid(u32),
    /// The file has no PID yet (the holder took the lock an instant ago) or is not ours.
    Unknown,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::Pid(pid) => write!(f, "process {pid}"),
            Holder::Unknown => f.write_str("a process whose PID the lock file does not name"),
        }
    }
}

/// The held lock; released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
}

impl StateLock {
    /// Takes the lock on `dir` (which must exist) without waiting, and writes our PID into it.
    pub fn acquire(dir: &Path) -> Result<StateLock, StateLockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| StateLockError::Io {
            dir: dir.to_path_buf(),
            path: path.clone(),
            source,
        };
        // Never truncated before the lock is ours: the file holds the holder's PID. std opens
        // with O_CLOEXEC, so no child process (a converter, a test peer) inherits the lock and
        // keeps it after we are gone.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        // SAFETY: flock on a descriptor we own; LOCK_NB makes it return at once.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Err(StateLockError::InUse {
                    dir: dir.to_path_buf(),
                    holder: read_holder(&mut file),
                });
            }
            return Err(io_err(e));
        }
        let pid = format!("{}\n", std::process::id());
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(io_err)?;
        Ok(StateLock { file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the lock until the process exits: the appliance's tasks (a render, a device
    /// transfer on a blocking thread) may outlive the function that started them, and another
    /// appliance must not start on the directory while any of them still runs. The kernel
    /// releases it at exit, `kill -9` included.
    pub fn hold_until_exit(self) {
        std::mem::forget(self.file);
    }
}

/// The PID in a lock file someone else holds; [`Holder::Unknown`] unless it is exactly a number.
fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| file.take(MAX_CONTENT).read_to_string(&mut text));
    match read {
        Ok(_) => text
            .trim()
            .parse::<u32>()
            .map(Holder::Pid)
            .unwrap_or(Holder::Unknown),
        Err(_) => Holder::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_directory_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(first.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
        // flock locks belong to the open file description, so a second open in this very
        // process conflicts just as another process would.
        match StateLock::acquire(dir.path()) {
            Err(StateLockError::InUse { dir: d, holder }) => {
                assert_eq!(d, dir.path());
                assert_eq!(holder, Holder::Pid(std::process::id()));
            }
            other => panic!("second lock not refused: {other:?}"),
        }
        drop(first);
        let again = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(again.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn a_lock_file_left_behind_does_not_lock() {
        let dir = tempfile::tempdir().unwrap();
        // What a killed holder leaves: the file with its PID (longer than ours, so a missing
        // truncation would show), but no lock.
        std::fs::write(dir.path().join(LOCK_FILE), "4294967295\n").unwrap();
        let lock = StateLock::acquire(dir.path()).unwrap();
        assert_eq!(
            std::fs::read_to_string(lock.path()).unwrap(),
            format!("{}\n", std::process::id())
        );
    }

    #[test]
    fn a_holder_that_wrote_no_pid_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(LOCK_FILE);
        std::fs::write(&path, "not a pid").unwrap();
        let file = std::fs::OpenOptions::new().read(true).open(&path).unwrap();
        // SAFETY: flock on a descriptor we own.
        assert_eq!(
            unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) },
            0
        );
        match StateLock::acquire(dir.path()) {
            Err(StateLockError::InUse { holder, .. }) => assert_eq!(holder, Holder::Unknown),
            other => panic!("lock not refused: {other:?}"),
        }
        // The refusal left the holder's file alone.
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a pid");
    }
}
