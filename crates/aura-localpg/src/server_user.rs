//! Running the server programs as the right OS user.
//!
//! `initdb`, `pg_ctl` and `postgres` refuse to run as root. When this process is root, they
//! run as the `postgres` OS user through `runuser -u postgres -- …` (there may be no sudo),
//! and the files they write to are handed to that user first. Otherwise they run as the
//! current user, directly.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};

use nix::unistd::{Gid, Uid, User};

use crate::Error;

/// The OS user the server runs as when this process is root.
const SERVER_USER: &str = "postgres";

/// Who runs the server programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerUser {
    /// `Some` when this process is root and must switch to the `postgres` user.
    switch_to: Option<(Uid, Gid)>,
}

impl ServerUser {
    /// The current user, or `postgres` when running as root.
    pub(crate) fn detect() -> Result<Self, Error> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(Self { switch_to: None });
        }
        let user = User::from_name(SERVER_USER)
            .ok()
            .flatten()
            .ok_or(Error::NoServerUser)?;
        Ok(Self {
            switch_to: Some((user.uid, user.gid)),
        })
    }

    /// A command running `program` as the server user, from `/` (the caller's working
    /// directory may be unreadable to that user), with no standard input.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = match self.switch_to {
            Some(_) => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", SERVER_USER, "--"]).arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir("/").stdin(Stdio::null());
        cmd
    }

    /// Makes `path` belong to the server user (no-op when not switching users).
    pub(crate) fn hand_over(&self, path: &Path) -> Result<(), Error> {
        if let Some((uid, gid)) = self.switch_to {
            std::os::unix::fs::chown(path, Some(uid.as_raw()), Some(gid.as_raw()))
                .map_err(|e| Error::io("give to the postgres user", path, e))?;
        }
        Ok(())
    }

    /// True when the server programs run as another user (this process is root).
    pub(crate) fn switches_user(&self) -> bool {
        self.switch_to.is_some()
    }

    /// Whether the server user can reach `dir`: traverse it and every parent, or, for a
    /// directory still to be created, its deepest existing ancestor (what is created below
    /// it is made traversable). Asks the system (`runuser … test -x`), so ACLs count.
    pub(crate) fn can_reach(&self, dir: &Path) -> Result<bool, Error> {
        if self.switch_to.is_none() {
            return Ok(true);
        }
        let existing = dir
            .ancestors()
            .find(|d| d.symlink_metadata().is_ok())
            .unwrap_or(Path::new("/"));
        let mut cmd = self.command(Path::new("test"));
        cmd.arg("-x").arg(existing);
        Ok(run(cmd, "runuser")?.status.success())
    }

    /// Checks that the server user can traverse `dir` (and so every parent): otherwise
    /// initdb would fail with a bare "permission denied".
    pub(crate) fn check_reachable(&self, dir: &Path) -> Result<(), Error> {
        if self.can_reach(dir)? {
            Ok(())
        } else {
            Err(Error::NotReachableByServerUser {
                path: first_untraversable(dir).unwrap_or_else(|| dir.to_path_buf()),
            })
        }
    }
}

/// The closest-to-`/` ancestor of `dir` that others cannot traverse (the likely culprit).
fn first_untraversable(dir: &Path) -> Option<std::path::PathBuf> {
    let mut ancestors: Vec<&Path> = dir.ancestors().collect();
    ancestors.reverse();
    ancestors
        .into_iter()
        .find(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 == 0))
        .map(Path::to_path_buf)
}

/// Runs `cmd` to completion, capturing its output.
pub(crate) fn run(mut cmd: Command, program: &str) -> Result<Output, Error> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.output().map_err(|source| Error::Spawn {
        program: program.to_owned(),
        source,
    })
}

/// A short description of an exit status, e.g. "exit status 1".
pub(crate) fn describe(status: ExitStatus) -> String {
    status.to_string()
}

/// The last non-empty lines of a command's stdout then stderr (where errors go).
pub(crate) fn output_lines(output: &Output, max_lines: usize) -> Vec<String> {
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push('\n');
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    crate::fsutil::last_lines(&text, max_lines)
}

/// [`output_lines`] joined with ` | `, for one-line error messages.
pub(crate) fn output_tail(output: &Output, max_lines: usize) -> String {
    output_lines(output, max_lines).join(" | ")
}
