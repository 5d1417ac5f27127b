//! Clusters of the test suite beside the workspace one: `<cluster root>-<suffix>` (the
//! root being `AURA_LOCALPG_DIR` when set, else the checkout's default), each with its own
//! data directory, port (derived from its path) and password, reused across runs.

use std::path::PathBuf;

use aura_localpg::LocalCluster;

/// The cluster rooted at `<cluster root>-<suffix>` (not started).
pub(crate) fn cluster(suffix: &str) -> Result<LocalCluster, aura_localpg::Error> {
    let base = std::env::var_os(aura_localpg::DIR_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(LocalCluster::default_root, PathBuf::from);
    let mut name = base.file_name().unwrap_or_default().to_os_string();
    name.push(format!("-{suffix}"));
    LocalCluster::at(base.with_file_name(name))
}
