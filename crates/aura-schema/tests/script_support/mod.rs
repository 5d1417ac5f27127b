//! What the tests of the repository's install scripts (`scripts/ensure-*.sh`) share: the
//! script's path, a scratch directory removed on drop, stand-in executables, the lines a
//! stand-in logged, and a failed run described for an assertion message.

use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

/// `scripts/<name>` of the repository.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

/// Writes `text` to `path`, mode 0755.
pub fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The lines of a log a stand-in appended to (none when it never ran).
pub fn log_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A run's exit code, stdout and stderr, for an assertion message.
pub fn describe(out: &Output) -> String {
    format!(
        "exit {:?}, stdout: {}, stderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh directory under the temp dir (`<prefix>-<pid>`, a leftover removed first),
/// removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Creates it.
    pub fn new(prefix: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{prefix}-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("remove leftover");
        }
        std::fs::create_dir_all(&dir).expect("mkdir");
        Scratch(dir)
    }
}

impl Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
