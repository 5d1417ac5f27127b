//! A checkout under a directory the `postgres` OS user cannot traverse (a 0700 parent, as
//! `/root` or any `mktemp -d`): as root, its cluster lives in a reachable directory of its
//! own instead, keeps the port derived from the checkout, and stays where it was put.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use aura_localpg::{Error, LocalCluster, Status};
use common::{TestCluster, fresh_root};

fn is_root() -> bool {
    std::fs::metadata("/proc/self").expect("self").uid() == 0
}

/// Removes a directory when dropped (the private parent and the relocation base).
struct RemoveDir<'a>(&'a Path);

impl Drop for RemoveDir<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.0);
    }
}

#[test]
fn a_checkout_the_server_user_cannot_reach_gets_a_reachable_cluster_of_its_own() {
    let private = fresh_root("private-parent");
    let _private_guard = RemoveDir(&private);
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let base = fresh_root("relocation-base");
    let _base_guard = RemoveDir(&base);
    std::fs::create_dir(private.join("checkout")).expect("mkdir checkout");
    let wanted = private.join("checkout/.aura/pg");

    let build = |root: &Path| {
        LocalCluster::builder(root)
            .relocate_when_unreachable(&base)
            .build()
            .expect("build")
    };
    let derived = build(&wanted);
    if !is_root() {
        // The server runs as ourselves, who can traverse our own 0700 directory.
        assert_eq!(derived.relocated_from(), None);
        assert_eq!(derived.root(), wanted);
        return;
    }

    // Relocated under the base, one directory per checkout, named after it.
    assert_eq!(derived.relocated_from(), Some(wanted.as_path()));
    assert_eq!(derived.root().parent(), Some(base.as_path()));
    let name = derived.root().file_name().expect("name").to_string_lossy();
    assert!(name.starts_with("checkout-"), "{name}");
    let other = build(&private.join("other/.aura/pg"));
    assert_ne!(other.root(), derived.root(), "each checkout has its own");

    // The port is still the one derived from the checkout's path, as without relocation.
    let unrelocated = LocalCluster::at(&wanted).expect("build without relocation");
    assert_eq!(derived.port(), unrelocated.port());
    assert!((20000..=29999).contains(&derived.port()));

    // The relocated cluster starts and serves; nothing is written into the checkout.
    let cluster = TestCluster::adopt(
        LocalCluster::builder(&wanted)
            .relocate_when_unreachable(&base)
            .port(common::test_port())
            .build()
            .expect("build with a test port"),
    );
    assert_eq!(cluster.root(), derived.root());
    cluster.ensure_running().expect("relocated cluster starts");
    assert!(matches!(
        cluster.status().expect("status"),
        Status::Running { .. }
    ));
    TcpStream::connect((cluster.host(), cluster.port())).expect("accepts TCP");
    assert_eq!(
        common::owner(&cluster.data_dir()),
        common::expected_server_uid()
    );
    assert_eq!(
        std::fs::read_to_string(cluster.root().join("relocated-from")).expect("origin file"),
        format!("{}\n", wanted.display())
    );
    assert!(
        !private.join("checkout/.aura").exists(),
        "nothing created in the checkout"
    );

    // Without relocation, such a root is the clear error it always was.
    let err = LocalCluster::at(&wanted)
        .expect("build without relocation")
        .ensure_running()
        .expect_err("unreachable root refused");
    assert!(
        matches!(err, Error::NotReachableByServerUser { .. }),
        "{err}"
    );

    // Once there, it stays there, even when the checkout becomes reachable.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let again = build(&wanted);
    assert_eq!(again.root(), cluster.root());
    assert_eq!(again.relocated_from(), Some(wanted.as_path()));
    // A reachable checkout without a cluster elsewhere is not relocated.
    let reachable = build(&private.join("third/.aura/pg"));
    assert_eq!(reachable.relocated_from(), None);
    assert_eq!(reachable.root(), private.join("third/.aura/pg"));
}
