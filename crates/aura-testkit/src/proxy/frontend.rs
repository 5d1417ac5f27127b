//! The client→server side of the Postgres wire protocol, as far as the proxy needs it: the
//! framing (an untyped startup packet, then messages of 1 type byte + a 4-byte length that
//! counts itself), and which statement each execution runs, so a cut can be placed right
//! after a chosen statement went through.

use std::collections::HashMap;

/// `SSLRequest` and `GSSENCRequest` codes: the server answers one byte, then the client
/// either starts TLS/GSS or sends its startup packet.
const SSL_REQUEST: u32 = 80_877_103;
const GSSENC_REQUEST: u32 = 80_877_104;
/// The first byte of a TLS record (handshake): from here on the stream is opaque.
const TLS_HANDSHAKE: u8 = 0x16;

/// Where the parser is in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Expecting an untyped packet (startup, SSLRequest, CancelRequest) or a TLS handshake.
    Startup,
    /// Typed messages.
    Messages,
    /// TLS (or GSS): nothing can be parsed; bytes pass as they come.
    Opaque,
}

/// One complete client message: its type byte (`0` for the untyped startup packets) and
/// body (the bytes after the length).
pub(crate) struct Message<'a> {
    pub(crate) tag: u8,
    pub(crate) body: &'a [u8],
}

/// Splits the client's byte stream into messages and remembers, per connection, the text of
/// each prepared statement and bound portal.
pub(crate) struct Frontend {
    phase: Phase,
    pending: Vec<u8>,
    statements: HashMap<Vec<u8>, Vec<u8>>,
    portals: HashMap<Vec<u8>, Vec<u8>>,
}

impl Frontend {
    pub(crate) fn new() -> Self {
        Frontend {
            phase: Phase::Startup,
            pending: Vec::new(),
            statements: HashMap::new(),
            portals: HashMap::new(),
        }
    }

    /// Appends `bytes` and returns the complete frames now available, in order, as raw
    /// bytes (to forward as they are; [`Frontend::message`] looks inside one). An
    /// incomplete frame stays buffered. In the opaque phase the bytes come back as one
    /// frame.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        self.pending.extend_from_slice(bytes);
        let mut frames = Vec::new();
        loop {
            match self.phase {
                Phase::Opaque => {
                    if !self.pending.is_empty() {
                        frames.push(std::mem::take(&mut self.pending));
                    }
                    return frames;
                }
                Phase::Startup => {
                    if self.pending.first() == Some(&TLS_HANDSHAKE) {
                        self.phase = Phase::Opaque;
                        continue;
                    }
                    let Some(len) = length(&self.pending, 0) else {
                        return frames;
                    };
                    if len < 8 {
                        // Not a startup packet: stop parsing rather than guess.
                        self.phase = Phase::Opaque;
                        continue;
                    }
                    if self.pending.len() < len {
                        return frames;
                    }
                    let frame: Vec<u8> = self.pending.drain(..len).collect();
                    let code = length(&frame, 4).unwrap_or(0) as u32;
                    if code != SSL_REQUEST && code != GSSENC_REQUEST {
                        // The startup packet (or a CancelRequest, after which the
                        // connection ends): typed messages follow.
                        self.phase = Phase::Messages;
                    }
                    frames.push(frame);
                }
                Phase::Messages => {
                    let Some(len) = length(&self.pending, 1) else {
                        return frames;
                    };
                    if len < 4 {
                        self.phase = Phase::Opaque;
                        continue;
                    }
                    if self.pending.len() < len + 1 {
                        return frames;
                    }
                    frames.push(self.pending.drain(..len + 1).collect());
                }
            }
        }
    }

    /// The message in `frame` (as returned by [`Frontend::push`]), recording what it
    /// prepares or binds. `None` for opaque bytes.
    pub(crate) fn message<'a>(&mut self, frame: &'a [u8]) -> Option<Message<'a>> {
        match self.phase {
            Phase::Opaque => None,
            _ if frame.first() == Some(&0) => Some(Message {
                tag: 0,
                body: frame.get(4..).unwrap_or_default(),
            }),
            _ => {
                let tag = frame[0];
                let body = frame.get(5..).unwrap_or_default();
                match tag {
                    b'P' => {
                        let mut parts = cstrings(body);
                        let name = parts.next().unwrap_or_default().to_vec();
                        let query = parts.next().unwrap_or_default().to_vec();
                        self.statements.insert(name, query);
                    }
                    b'B' => {
                        let mut parts = cstrings(body);
                        let portal = parts.next().unwrap_or_default().to_vec();
                        let statement = parts.next().unwrap_or_default();
                        let query = self.statements.get(statement).cloned().unwrap_or_default();
                        self.portals.insert(portal, query);
                    }
                    _ => {}
                }
                Some(Message { tag, body })
            }
        }
    }

    /// The statement text an `Execute` message (`body`) runs: that of the portal it names.
    pub(crate) fn executed_query(&self, body: &[u8]) -> &[u8] {
        let portal = cstrings(body).next().unwrap_or_default();
        self.portals
            .get(portal)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// The big-endian 4-byte length at `at`, when that many bytes are there.
fn length(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw) as usize)
}

/// The NUL-terminated strings at the start of `body`.
pub(crate) fn cstrings(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == 0)
}

/// True when `haystack` contains `needle`.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}
