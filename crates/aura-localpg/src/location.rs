//! Where a checkout's cluster lives.
//!
//! - **The checkout** is found from the current directory, as git and cargo find theirs: the
//!   nearest ancestor (the directory itself included) holding a `Cargo.toml` that declares
//!   `[workspace]`, or a `.git` (a directory, or the file of a worktree). Its cluster's root
//!   is `<checkout>/.aura/pg`. Outside any checkout the root is per user:
//!   `$XDG_DATA_HOME/aura/pg`, else `$HOME/.local/share/aura/pg`, else `./.aura/pg`.
//! - **Relocation.** As root, the server runs as the `postgres` OS user, which cannot start a
//!   cluster under a directory it cannot traverse (a checkout in `/root`, under any
//!   `mktemp -d`). Such a checkout's cluster lives in `<base>/<name>-<hash>/` instead
//!   ([`RELOCATION_BASE`] by default; `<name>` the checkout's directory name, `<hash>` 16 hex
//!   digits of the wanted root's canonical path), so every checkout still has its own. A
//!   cluster already initialized at either place stays there.

use std::ffi::OsStr;
use std::path::{Component, Path, PathBuf};

use crate::Error;
use crate::layout::Layout;
use crate::port;
use crate::server_user::ServerUser;

/// Where clusters go that the `postgres` OS user could not reach in their checkout: a
/// root-owned directory it can traverse, kept across reboots (unlike /tmp) and not swept by
/// systemd-tmpfiles' age rules (unlike /var/tmp), writable only by root (nobody else can
/// plant files there).
pub const RELOCATION_BASE: &str = "/var/lib/aura-localpg";

/// The root of the checkout `start` is in: the nearest ancestor of `start` (itself
/// included) with a `Cargo.toml` declaring `[workspace]` or a `.git` entry.
pub fn find_checkout(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| {
            dir.join(".git").symlink_metadata().is_ok()
                || declares_workspace(&dir.join("Cargo.toml"))
        })
        .map(Path::to_path_buf)
}

/// True when `manifest` is a Cargo manifest with a `[workspace]` (or `[workspace.…]`) table.
fn declares_workspace(manifest: &Path) -> bool {
    std::fs::read_to_string(manifest).is_ok_and(|text| {
        text.lines().map(str::trim).any(|line| {
            line == "[workspace]" || (line.starts_with("[workspace.") && line.ends_with(']'))
        })
    })
}

/// The default root for a process whose current directory is `cwd` (see the module doc).
pub(crate) fn default_root(
    cwd: Option<&Path>,
    xdg_data_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> PathBuf {
    if let Some(checkout) = cwd.and_then(find_checkout) {
        return checkout.join(".aura").join("pg");
    }
    if let Some(data) = xdg_data_home.filter(|p| p.is_absolute()) {
        return data.join("aura").join("pg");
    }
    if let Some(home) = home.filter(|p| p.is_absolute()) {
        return home.join(".local/share/aura/pg");
    }
    cwd.unwrap_or(Path::new("/")).join(".aura").join("pg")
}

/// The root a cluster wanted at `wanted` actually uses: `wanted` when it holds a cluster or
/// the server user can reach it, the relocated root under `base` when that holds a cluster
/// or `wanted` is out of reach.
pub(crate) fn place(
    wanted: &Path,
    base: &Path,
    server_user: &ServerUser,
) -> Result<PathBuf, Error> {
    if !server_user.switches_user() || Layout::new(wanted.to_path_buf()).is_initialized() {
        return Ok(wanted.to_path_buf());
    }
    let relocated = relocated_root(base, wanted);
    if Layout::new(relocated.clone()).is_initialized() || !server_user.can_reach(wanted)? {
        return Ok(relocated);
    }
    Ok(wanted.to_path_buf())
}

/// `<base>/<name>-<hash>`: `<name>` is the checkout's directory name (the one above `.aura/pg`)
/// reduced to `[A-Za-z0-9._-]`, `<hash>` the 64-bit FNV-1a of the canonical wanted root.
pub(crate) fn relocated_root(base: &Path, wanted: &Path) -> PathBuf {
    let canonical = canonical(wanted);
    let named = if canonical.ends_with(".aura/pg") {
        canonical.parent().and_then(Path::parent)
    } else {
        Some(canonical.as_path())
    };
    let name: String = named
        .and_then(Path::file_name)
        .map(OsStr::to_string_lossy)
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(40)
        .collect();
    let name = if name.is_empty() {
        "cluster".to_owned()
    } else {
        name
    };
    base.join(format!("{name}-{:016x}", port::fnv1a(&canonical)))
}

/// `path` with symlinks resolved as far as it exists (its missing tail appended as is), so
/// that one directory reached by two paths gives one hash and one port.
pub(crate) fn canonical(path: &Path) -> PathBuf {
    let mut existing = path;
    let mut tail = Vec::new();
    loop {
        if let Ok(resolved) = std::fs::canonicalize(existing) {
            return tail.iter().rev().fold(resolved, |acc, c| acc.join(c));
        }
        match (existing.parent(), existing.components().next_back()) {
            (Some(parent), Some(Component::Normal(name))) => {
                tail.push(name.to_owned());
                existing = parent;
            }
            _ => return path.to_path_buf(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "aura-localpg-location-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("mkdir");
        dir
    }

    #[test]
    fn the_checkout_is_the_nearest_workspace_or_git_root() {
        let dir = scratch("find");
        let ws = dir.join("ws");
        fs::create_dir_all(ws.join("crates/member/src")).expect("mkdir");
        fs::write(
            ws.join("Cargo.toml"),
            "[workspace]\nmembers = [\"crates/*\"]\n",
        )
        .expect("ws");
        fs::write(
            ws.join("crates/member/Cargo.toml"),
            "[package]\nname = \"m\"\n",
        )
        .expect("m");
        // A member's Cargo.toml is not a workspace root: the walk goes on up.
        assert_eq!(
            find_checkout(&ws.join("crates/member/src")),
            Some(ws.clone())
        );
        assert_eq!(find_checkout(&ws), Some(ws.clone()));

        // `[workspace.dependencies]` alone also marks a root; a `.git` file (worktree) too.
        let deps = dir.join("deps");
        fs::create_dir_all(&deps).expect("mkdir");
        fs::write(
            deps.join("Cargo.toml"),
            "[workspace.dependencies]\nx = \"1\"\n",
        )
        .expect("w");
        assert_eq!(find_checkout(&deps), Some(deps.clone()));
        let worktree = dir.join("wt");
        fs::create_dir_all(worktree.join("a/b")).expect("mkdir");
        fs::write(worktree.join(".git"), "gitdir: /elsewhere\n").expect("git");
        assert_eq!(find_checkout(&worktree.join("a/b")), Some(worktree.clone()));

        // A text that merely mentions workspace is not a table header.
        let plain = dir.join("plain");
        fs::create_dir_all(&plain).expect("mkdir");
        fs::write(plain.join("Cargo.toml"), "[package]\n# [workspace] later\n").expect("p");
        assert_ne!(find_checkout(&plain), Some(plain.clone()));
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn default_root_is_in_the_checkout_else_per_user() {
        let dir = scratch("default");
        let ws = dir.join("ws");
        fs::create_dir_all(ws.join("sub")).expect("mkdir");
        fs::write(ws.join("Cargo.toml"), "[workspace]\n").expect("ws");
        let home = Some(PathBuf::from("/home/u"));
        assert_eq!(
            default_root(Some(&ws.join("sub")), None, home.clone()),
            ws.join(".aura/pg")
        );
        // `/` holds neither a workspace manifest nor `.git` on a sane machine.
        let outside = Path::new("/");
        assert_eq!(
            default_root(Some(outside), Some("/data".into()), home.clone()),
            Path::new("/data/aura/pg")
        );
        assert_eq!(
            default_root(Some(outside), Some("relative".into()), home),
            Path::new("/home/u/.local/share/aura/pg")
        );
        assert_eq!(
            default_root(Some(outside), None, None),
            Path::new("/.aura/pg")
        );
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn relocated_roots_are_per_checkout_and_stable() {
        let base = Path::new("/var/lib/aura-localpg");
        let a = relocated_root(base, Path::new("/root/private/aura/.aura/pg"));
        let b = relocated_root(base, Path::new("/root/other/aura/.aura/pg"));
        assert_ne!(a, b);
        assert_eq!(
            a,
            relocated_root(base, Path::new("/root/private/aura/.aura/pg"))
        );
        assert_eq!(a.parent(), Some(base));
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        assert!(
            name.starts_with("aura-") && name.len() == "aura-".len() + 16,
            "{name}"
        );
        let odd = relocated_root(base, Path::new("/x/my checkout é/.aura/pg"));
        assert!(
            odd.file_name()
                .expect("name")
                .to_string_lossy()
                .starts_with("mycheckout-"),
            "{}",
            odd.display()
        );
    }

    #[test]
    fn canonical_resolves_the_existing_part_and_keeps_the_rest() {
        let dir = scratch("canonical");
        fs::create_dir_all(dir.join("real")).expect("mkdir");
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).expect("symlink");
        let real = fs::canonicalize(dir.join("real")).expect("canon");
        assert_eq!(canonical(&dir.join("link/.aura/pg")), real.join(".aura/pg"));
        assert_eq!(canonical(&dir.join("real/.aura/pg")), real.join(".aura/pg"));
        fs::remove_dir_all(&dir).expect("cleanup");
    }
}
