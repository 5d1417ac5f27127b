//! The cluster's life cycle on the real PostgreSQL binaries: init, start, reuse, stop,
//! concurrency, stale pid files, and the errors users see.

mod common;

use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use aura_localpg::{Error, LocalCluster, Status};
use common::{TestCluster, fresh_root};
use secrecy::ExposeSecret;

fn running_pid(cluster: &LocalCluster) -> u32 {
    match cluster.status().expect("status") {
        Status::Running { pid } => pid,
        other => panic!("expected a running cluster, got {other}"),
    }
}

#[test]
fn init_start_reuse_stop_restart() {
    // `at` with no port: the port is derived from the root and persisted.
    let root = fresh_root("lifecycle");
    let cluster = TestCluster::adopt(LocalCluster::at(&root).expect("build"));
    assert_eq!(cluster.status().expect("status"), Status::NotInitialized);
    assert!(matches!(
        cluster.superuser_password(),
        Err(Error::NotInitialized { .. })
    ));

    cluster.ensure_running().expect("first ensure_running");
    let pid = running_pid(&cluster);
    let port = cluster.port();
    assert!((20000..=29999).contains(&port), "derived port {port}");
    assert_eq!(
        std::fs::read_to_string(root.join("port"))
            .expect("port file")
            .trim(),
        port.to_string()
    );
    TcpStream::connect((cluster.host(), port)).expect("server accepts TCP connections");
    assert_eq!(cluster.superuser(), "postgres");

    // The data directory and the log belong to the server user.
    let server_uid = common::expected_server_uid();
    assert_eq!(common::owner(&cluster.data_dir()), server_uid);
    assert_eq!(common::owner(&cluster.log_path()), server_uid);

    // Reuse, from a second handle (as a second test process would): same server, same port.
    let again = LocalCluster::at(&root).expect("build again");
    assert_eq!(again.port(), port, "port persisted per root");
    again.ensure_running().expect("second ensure_running");
    assert_eq!(running_pid(&again), pid, "reused, not restarted");
    assert_eq!(common::ready_count(&cluster.log_path()), 1);

    // Stop: no server process, postmaster or child, survives.
    let children = common::children_of(pid);
    assert!(!children.is_empty(), "a running server has child processes");
    assert!(cluster.stop().expect("stop"), "it was running");
    assert_eq!(cluster.status().expect("status"), Status::Stopped);
    assert!(!common::is_live(pid), "postmaster {pid} still alive");
    for child in children {
        assert!(!common::is_live(child), "server child {child} still alive");
    }
    let data_dir = cluster.data_dir().display().to_string();
    assert_eq!(
        common::live_processes_mentioning(&data_dir),
        Vec::<u32>::new()
    );
    assert!(TcpStream::connect((cluster.host(), port)).is_err());
    assert!(!cluster.stop().expect("second stop"), "already stopped");

    // Restart on the same data directory and port, same password.
    let password = cluster.superuser_password().expect("password");
    cluster.ensure_running().expect("restart");
    assert_ne!(running_pid(&cluster), pid);
    assert_eq!(cluster.port(), port);
    assert_eq!(
        cluster
            .superuser_password()
            .expect("password")
            .expose_secret(),
        password.expose_secret()
    );
    TcpStream::connect((cluster.host(), port)).expect("restarted server accepts TCP");
}

#[test]
fn password_file_is_private_and_never_logged() {
    let cluster = TestCluster::new("password");
    cluster.ensure_running().expect("ensure_running");
    let file = cluster.root().join("superuser.password");
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "password file mode {mode:o}");
    let password = cluster.superuser_password().expect("password");
    assert_eq!(password.expose_secret().len(), 32);
    assert!(
        password
            .expose_secret()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    );
    assert!(!format!("{:?}", cluster.cluster).contains(password.expose_secret()));
    // initdb's copy of the password is gone.
    assert!(!cluster.root().join(".initdb-pwfile").exists());
    let log = std::fs::read_to_string(cluster.log_path()).expect("log");
    assert!(!log.is_empty());
    assert!(
        !log.contains(password.expose_secret()),
        "password leaked into the log"
    );
    let url = cluster.superuser_url("postgres").expect("url");
    assert!(url.expose_secret().starts_with(&format!(
        "postgres://postgres:{}@127.0.0.1:",
        password.expose_secret()
    )));
}

#[test]
fn missing_binaries_is_one_clear_error() {
    let empty = fresh_root("nobin");
    let err = LocalCluster::builder(empty.join("cluster"))
        .bin_dir(&empty)
        .build()
        .expect_err("no binaries there");
    assert!(matches!(err, Error::BinariesNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains("initdb") && msg.contains("pg_ctl"), "{msg}");
    assert!(msg.contains("apt-get install postgresql"), "{msg}");
    assert!(msg.contains("AURA_PG_BIN_DIR"), "{msg}");
    assert!(msg.contains(&empty.display().to_string()), "{msg}");
    std::fs::remove_dir_all(&empty).expect("cleanup");
}

#[test]
fn ports_5432_and_ephemeral_are_refused() {
    for port in [5432, 40000] {
        let err = LocalCluster::builder("/tmp/unused")
            .port(port)
            .build()
            .expect_err("refused");
        assert!(matches!(err, Error::InvalidPort { .. }), "{err:?}");
    }
}

#[test]
fn busy_port_is_reported_not_hidden() {
    // The squatter binds first, then the cluster is given its port: a port found free may be
    // taken by another process (another test run on the machine) before we bind it.
    let (_squatter, port) = loop {
        let port = common::test_port();
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            break (listener, port);
        }
    };
    let cluster = TestCluster::adopt(
        LocalCluster::builder(fresh_root("busy"))
            .port(port)
            .build()
            .expect("build cluster"),
    );
    let err = cluster.ensure_running().expect_err("port is taken");
    assert!(
        matches!(err, Error::PortInUse { port } if port == cluster.port()),
        "{err:?}"
    );
    assert_eq!(cluster.status().expect("status"), Status::Stopped);
}

#[test]
fn threads_racing_get_one_server() {
    let cluster = TestCluster::new("threads");
    let (root, port) = (cluster.root().to_path_buf(), cluster.port());
    let pids: Vec<u32> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let root = root.clone();
                s.spawn(move || {
                    let own = LocalCluster::builder(root)
                        .port(port)
                        .build()
                        .expect("build");
                    own.ensure_running().expect("ensure_running in a thread");
                    running_pid(&own)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(pids.iter().all(|p| *p == pids[0]), "one server: {pids:?}");
    assert_eq!(common::ready_count(&cluster.log_path()), 1, "started once");
}

const CHILD_ROOT: &str = "AURA_LOCALPG_TEST_CHILD_ROOT";
const CHILD_PORT: &str = "AURA_LOCALPG_TEST_CHILD_PORT";

#[test]
fn processes_racing_get_one_server() {
    // Child mode: this same test, re-run by the parent in another process.
    if let (Some(root), Some(port)) = (std::env::var_os(CHILD_ROOT), std::env::var_os(CHILD_PORT)) {
        let port = port.to_str().and_then(|p| p.parse().ok()).expect("port");
        let cluster = LocalCluster::builder(root)
            .port(port)
            .build()
            .expect("build");
        cluster.ensure_running().expect("ensure_running in a child");
        println!("\nCHILD-PID={}", running_pid(&cluster));
        return;
    }
    let cluster = TestCluster::new("processes");
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..3)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "processes_racing_get_one_server",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ROOT, cluster.root())
                .env(CHILD_PORT, cluster.port().to_string())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    let pids: Vec<u32> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().expect("child output");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "child failed: {stdout}");
            stdout
                .lines()
                .find_map(|l| l.strip_prefix("CHILD-PID="))
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("no pid in child output: {stdout}"))
        })
        .collect();
    assert!(pids.iter().all(|p| *p == pids[0]), "one server: {pids:?}");
    assert_eq!(running_pid(&cluster), pids[0]);
    assert_eq!(common::ready_count(&cluster.log_path()), 1, "started once");
}

#[test]
fn killed_server_leaves_a_stale_pid_file_that_does_not_block_start() {
    let cluster = TestCluster::new("killed");
    cluster.ensure_running().expect("start");
    let pid = running_pid(&cluster);
    let status = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    // `kill` returns before the process is dead; wait for it to die (it may stay a zombie
    // until init reaps it, which the server would still take for a running postmaster).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while common::is_live(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "postmaster survived SIGKILL"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid_file = cluster.data_dir().join("postmaster.pid");
    assert!(pid_file.exists(), "a killed server leaves its pid file");
    cluster
        .ensure_running()
        .expect("start after the server was killed");
    let new_pid = running_pid(&cluster);
    assert_ne!(new_pid, pid);
    TcpStream::connect((cluster.host(), cluster.port())).expect("accepts TCP after restart");
}

#[test]
fn pid_file_naming_an_unrelated_live_process_does_not_block_start() {
    // After a reboot the old postmaster's pid may belong to any process.
    let cluster = TestCluster::new("reused");
    cluster.ensure_running().expect("start");
    assert!(cluster.stop().expect("stop"));
    let mut unrelated = Command::new("sleep")
        .arg("60")
        .spawn()
        .expect("spawn sleep");
    let pid_file = cluster.data_dir().join("postmaster.pid");
    std::fs::write(
        &pid_file,
        format!(
            "{}\n{}\n1700000000\n{}\n\n127.0.0.1\n  1234  5678\nready   \n",
            unrelated.id(),
            cluster.data_dir().display(),
            cluster.port()
        ),
    )
    .expect("write fake pid file");
    assert_eq!(cluster.status().expect("status"), Status::Stopped);
    let result = cluster.ensure_running();
    unrelated.kill().expect("kill sleep");
    unrelated.wait().expect("reap sleep");
    result.expect("start despite a pid file naming a reused pid");
    assert_ne!(running_pid(&cluster), unrelated.id());
}

#[test]
fn start_failure_quotes_the_server_log() {
    let cluster = TestCluster::new("badconf");
    cluster.ensure_running().expect("start");
    assert!(cluster.stop().expect("stop"));
    // Break the configuration: the server refuses to start and says why in its log.
    let conf = cluster.data_dir().join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).expect("read conf");
    text.push_str("\nshared_buffers = 'not a size'\n");
    std::fs::write(&conf, text).expect("write conf");
    let started = std::time::Instant::now();
    let err = cluster.ensure_running().expect_err("broken config");
    assert!(started.elapsed() < Duration::from_secs(25), "fails fast");
    let msg = err.to_string();
    assert!(matches!(err, Error::StartFailed { .. }), "{err:?}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(msg.contains("shared_buffers"), "log tail quoted: {msg}");
    let password = cluster.superuser_password().expect("password");
    assert!(!msg.contains(password.expose_secret()));
}
