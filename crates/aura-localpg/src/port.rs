//! The cluster's TCP port: derived from the root path, persisted, never 5432, never in the
//! Linux ephemeral range.

use std::net::{Ipv4Addr, TcpListener};
use std::ops::RangeInclusive;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::Error;
use crate::fsutil;

/// Environment variable that overrides the cluster's port.
pub const PORT_ENV: &str = "AURA_LOCALPG_PORT";

/// Derived ports fall in this range: below Linux's ephemeral range (32768-60999), where a
/// listening port can collide with the source port of an outgoing connection, and away
/// from the well-known 5432.
pub(crate) const DERIVED: RangeInclusive<u16> = 20000..=29999;

/// How many successive ports first initialization probes before giving up.
const PROBES: u16 = 200;

/// Postgres' default port, used by the machine's shared server: never ours.
const SHARED_DEFAULT: u16 = 5432;

/// The port derived from a (canonical) root path: a stable FNV-1a hash into [`DERIVED`],
/// so every checkout gets its own port and keeps it.
pub(crate) fn derived(root: &Path) -> u16 {
    let span = u64::from(DERIVED.end() - DERIVED.start()) + 1;
    // `hash % span` < 10_000, so the conversion cannot fail.
    DERIVED.start() + u16::try_from(fnv1a(root) % span).unwrap_or(0)
}

/// The 64-bit FNV-1a hash of a path's bytes: stable across builds and machines.
pub(crate) fn fnv1a(path: &Path) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.as_os_str().as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Checks that a port chosen by a user may serve the local cluster.
pub(crate) fn validate(port: u16) -> Result<u16, Error> {
    let reason = if port == SHARED_DEFAULT {
        "5432 is the shared server's port, never the local cluster's"
    } else if port < 1024 {
        "privileged ports need root"
    } else if port >= 32768 {
        "ports from 32768 up are in the Linux ephemeral range"
    } else {
        return Ok(port);
    };
    Err(Error::InvalidPort {
        value: port.to_string(),
        reason,
    })
}

/// Parses and validates a port given as text (the environment override).
pub(crate) fn parse(value: &str) -> Result<u16, Error> {
    let port = value
        .trim()
        .parse::<u16>()
        .map_err(|_| Error::InvalidPort {
            value: value.to_owned(),
            reason: "not a port number",
        })?;
    validate(port)
}

/// True when nothing listens on 127.0.0.1:`port` (we could bind it). std sets SO_REUSEADDR
/// like the postmaster does, so connections in TIME_WAIT do not count as busy.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// The first free port from `start` on, wrapping within [`DERIVED`].
pub(crate) fn first_free_from(start: u16) -> Result<u16, Error> {
    let mut port = start;
    for _ in 0..PROBES {
        if is_free(port) {
            return Ok(port);
        }
        port = if port >= *DERIVED.end() || port < *DERIVED.start() {
            *DERIVED.start()
        } else {
            port + 1
        };
    }
    Err(Error::NoFreePort {
        first: start,
        tried: PROBES,
    })
}

/// The port persisted in `path`, if any.
pub(crate) fn read_file(path: &Path) -> Result<Option<u16>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map(Some).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Persists `port` in `path`.
pub(crate) fn write_file(path: &Path, port: u16) -> Result<(), Error> {
    fsutil::write_atomic(path, format!("{port}\n").as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ports_are_stable_in_range_and_differ_between_roots() {
        let a = derived(Path::new("/work/main/.aura/pg"));
        assert_eq!(a, derived(Path::new("/work/main/.aura/pg")));
        assert!(DERIVED.contains(&a));
        let ports: std::collections::HashSet<u16> = (0..50)
            .map(|i| derived(Path::new(&format!("/tmp/checkout-{i}/.aura/pg"))))
            .collect();
        assert!(ports.iter().all(|p| DERIVED.contains(p)));
        assert!(
            ports.len() > 40,
            "hash spreads roots over the range: {}",
            ports.len()
        );
    }

    #[test]
    fn validation_refuses_5432_privileged_and_ephemeral_ports() {
        assert!(validate(5432).is_err());
        assert!(validate(80).is_err());
        assert!(validate(32768).is_err());
        assert!(validate(45000).is_err());
        assert_eq!(validate(25000).expect("ok"), 25000);
        assert!(parse("abc").is_err());
        assert_eq!(parse(" 24001\n").expect("ok"), 24001);
        let msg = parse("5432").expect_err("refused").to_string();
        assert!(
            msg.contains("5432") && msg.contains("choose a free port"),
            "{msg}"
        );
    }

    #[test]
    fn probing_skips_a_busy_port() {
        // Hold a port in the derived range, then probe from it.
        let held = (20000..=29999u16).find_map(|p| {
            TcpListener::bind((Ipv4Addr::LOCALHOST, p))
                .ok()
                .map(|l| (p, l))
        });
        let (port, _listener) = held.expect("some port in range is free");
        assert!(!is_free(port));
        let next = first_free_from(port).expect("a free port");
        assert_ne!(next, port);
        assert!(DERIVED.contains(&next));
    }
}
