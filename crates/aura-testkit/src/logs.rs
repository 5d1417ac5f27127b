//! [`CapturedLogs`]: what a `tracing_subscriber::fmt` subscriber writes, kept in memory so a
//! test can search it (for a span's attributes, or for a secret that must not be there).

use std::io::Write;
use std::sync::{Arc, Mutex};

/// A `MakeWriter` that appends everything written to one shared buffer; clones share it.
///
/// ```no_run
/// let logs = aura_testkit::CapturedLogs::default();
/// let subscriber = tracing_subscriber::fmt().with_writer(logs.clone()).finish();
/// tracing::subscriber::with_default(subscriber, || tracing::info!("hello"));
/// assert!(logs.text().contains("hello"));
/// ```
#[derive(Clone, Default)]
pub struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl CapturedLogs {
    /// Everything written so far, as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|p| p.into_inner())).into_owned()
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> CapturedLogs {
        self.clone()
    }
}
