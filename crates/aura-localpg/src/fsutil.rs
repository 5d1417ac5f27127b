//! Small file-system helpers: private files written atomically, directories the server
//! user can traverse, and reading the end of the server log.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::Error;

/// Writes `contents` to `path` with `mode`, atomically: readers see the old file or the
/// complete new one, never a partial write. The file is created with `mode` from the
/// start, so it is never readable by others, not even briefly.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let tmp = sibling(path, &format!(".tmp{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .map_err(|e| Error::io("create", &tmp, e))?;
        // The umask may have narrowed `mode`; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("set permissions of", &tmp, e))?;
        file.write_all(contents)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `path` with `suffix` appended to its file name (a hidden sibling when `suffix` says so).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Creates `dir` and its missing parents with mode 0755 (exactly, whatever the umask), so
/// the `postgres` OS user can traverse them. Existing directories are left as they are.
pub(crate) fn create_dir_all_traversable(dir: &Path) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut cursor = Some(dir);
    while let Some(d) = cursor {
        if d.as_os_str().is_empty() || d.exists() {
            break;
        }
        missing.push(d);
        cursor = d.parent();
    }
    for d in missing.into_iter().rev() {
        match DirBuilder::new().mode(0o755).create(d) {
            Ok(()) => fs::set_permissions(d, fs::Permissions::from_mode(0o755))
                .map_err(|e| Error::io("set permissions of", d, e))?,
            // Another process created it in the meantime: fine.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io("create directory", d, e)),
        }
    }
    Ok(())
}

/// Removes a file when dropped (the initdb password copy, whatever happens to initdb).
pub(crate) struct RemoveOnDrop(pub(crate) PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_file(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove file");
        }
    }
}

/// The length of `path` now (0 when missing), to read what is written after this point.
pub(crate) fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map_or(0, |m| m.len())
}

/// At most `max_lines` last non-empty lines of `path` written after byte `from` (reading no
/// more than the last 64 KiB). A missing or unreadable file gives no lines.
pub(crate) fn tail_lines(path: &Path, from: u64, max_lines: usize) -> Vec<String> {
    const MAX_BYTES: u64 = 64 * 1024;
    let Ok(mut file) = fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = from.max(len.saturating_sub(MAX_BYTES)).min(len);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    last_lines(&String::from_utf8_lossy(&bytes), max_lines)
}

/// The last `max_lines` non-empty lines of `text`, trimmed.
pub(crate) fn last_lines(text: &str, max_lines: usize) -> Vec<String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    lines[lines.len().saturating_sub(max_lines)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end_without_blank_lines() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(last_lines("a\n", 5), vec!["a"]);
        assert!(last_lines("", 5).is_empty());
    }

    #[test]
    fn write_atomic_sets_the_exact_mode_and_replaces() {
        let dir = std::env::temp_dir().join(format!("aura-localpg-fsutil-{}", std::process::id()));
        create_dir_all_traversable(&dir.join("a/b")).expect("mkdir");
        assert_eq!(
            fs::metadata(dir.join("a"))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777,
            0o755
        );
        let file = dir.join("a/b/secret");
        write_atomic(&file, b"one", 0o600).expect("write");
        write_atomic(&file, b"two", 0o600).expect("rewrite");
        assert_eq!(fs::read(&file).expect("read"), b"two");
        assert_eq!(
            fs::metadata(&file).expect("meta").permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.join("a/b")).expect("ls").count(),
            1,
            "no temp left"
        );
        assert_eq!(tail_lines(&file, 0, 3), vec!["two"]);
        assert!(tail_lines(&file, 3, 3).is_empty());
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
