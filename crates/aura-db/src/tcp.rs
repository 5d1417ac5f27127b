//! Dead-server detection: TCP keepalives and `TCP_USER_TIMEOUT` on every connection.
//!
//! Without them a server that vanished from the network (a crashed host, a dropped route, a
//! firewall that forgets the flow) leaves each connection hanging until the kernel gives up
//! retransmitting, about 15 minutes on Linux, and an idle pooled connection to it looks
//! healthy forever. With the defaults: an idle connection is probed after 30 s and declared
//! dead when the probes go unanswered; a connection with unacknowledged data (a statement
//! sent, no reply) is closed after 30 s, and the operation fails as a lost connection.
//!
//! They see only what TCP sees: a server that hangs while its host's kernel still
//! acknowledges segments and probes (a stopped postmaster, a proxy or middlebox that
//! swallows traffic) looks alive to them. The operation deadline
//! ([`crate::PoolSettings::operation_deadline`]) bounds calls in that case; these stay for
//! real dead hosts, where they answer sooner and also clear idle connections.
//!
//! A connection string's own `keepalives`, `keepalives_idle`, `keepalives_interval`,
//! `keepalives_retries` and `tcp_user_timeout` keys (libpq's) win over these settings.
//! Unix-domain sockets ignore all of them.

use std::time::Duration;

/// TCP keepalive and user-timeout settings of every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpSettings {
    /// Idle time before the first keepalive probe (`AURA_DB_TCP_KEEPALIVE_IDLE`, 30s);
    /// zero turns keepalives off.
    pub keepalive_idle: Duration,
    /// Time between unanswered probes (`AURA_DB_TCP_KEEPALIVE_INTERVAL`, 10s).
    pub keepalive_interval: Duration,
    /// Unanswered probes before the connection is dropped
    /// (`AURA_DB_TCP_KEEPALIVE_RETRIES`, 3).
    pub keepalive_retries: u32,
    /// Longest time sent data may stay unacknowledged before the connection is dropped
    /// (`AURA_DB_TCP_USER_TIMEOUT`, 30s; Linux only); zero keeps the system's default.
    pub user_timeout: Duration,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            keepalive_idle: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(10),
            keepalive_retries: 3,
            user_timeout: Duration::from_secs(30),
        }
    }
}

/// tokio-postgres' own keepalive idle default: a value the connection string did not set.
const DRIVER_DEFAULT_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

impl TcpSettings {
    /// Sets these on `pg` where its connection string did not set the key itself.
    ///
    /// tokio-postgres keeps `keepalives_idle` as a plain value (2 h by default), so a
    /// string that asks for exactly 2 h reads as unset and gets this setting.
    pub(crate) fn apply(&self, pg: &mut tokio_postgres::Config) {
        if !pg.get_keepalives() {
            // `keepalives=0` in the string.
        } else if self.keepalive_idle.is_zero() {
            pg.keepalives(false);
        } else {
            if pg.get_keepalives_idle() == DRIVER_DEFAULT_IDLE {
                pg.keepalives_idle(self.keepalive_idle);
            }
            if pg.get_keepalives_interval().is_none() {
                pg.keepalives_interval(self.keepalive_interval);
            }
            if pg.get_keepalives_retries().is_none() {
                pg.keepalives_retries(self.keepalive_retries);
            }
        }
        if pg.get_tcp_user_timeout().is_none() && !self.user_timeout.is_zero() {
            pg.tcp_user_timeout(self.user_timeout);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[test]
    fn settings_reach_the_driver_config() {
        let mut pg = tokio_postgres::Config::from_str("postgres://u@h/d").unwrap();
        TcpSettings::default().apply(&mut pg);
        assert!(pg.get_keepalives());
        assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(10)));
        assert_eq!(pg.get_keepalives_retries(), Some(3));
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(30)));
    }

    #[test]
    fn the_connection_strings_own_keys_win() {
        let mut pg = tokio_postgres::Config::from_str(
            "postgres://u@h/d?keepalives_idle=5&keepalives_interval=2&keepalives_retries=9&tcp_user_timeout=7",
        )
        .unwrap();
        TcpSettings::default().apply(&mut pg);
        assert_eq!(pg.get_keepalives_idle(), Duration::from_secs(5));
        assert_eq!(pg.get_keepalives_interval(), Some(Duration::from_secs(2)));
        assert_eq!(pg.get_keepalives_retries(), Some(9));
        assert_eq!(pg.get_tcp_user_timeout(), Some(&Duration::from_secs(7)));
        let mut off = tokio_postgres::Config::from_str("host=h keepalives=0").unwrap();
        TcpSettings::default().apply(&mut off);
        assert!(!off.get_keepalives());
    }

    #[test]
    fn zero_idle_turns_keepalives_off_and_zero_user_timeout_leaves_the_os_default() {
        let mut pg = tokio_postgres::Config::from_str("host=h").unwrap();
        TcpSettings {
            keepalive_idle: Duration::ZERO,
            user_timeout: Duration::ZERO,
            ..TcpSettings::default()
        }
        .apply(&mut pg);
        assert!(!pg.get_keepalives());
        assert_eq!(pg.get_tcp_user_timeout(), None);
    }
}
