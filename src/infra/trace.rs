//! Who asked: the request id and the W3C Trace Context (`traceparent`) of the request being
//! served, carried as a task-local so that everything the request does — its log lines, its
//! problem answers, its calls to a remote TSA — can name it without threading it through
//! every signature.
//!
//! `traceparent` follows W3C Trace Context Level 1 (§3.2): `version-traceid-parentid-flags`,
//! lowercase hex, version `00`; a trace id or parent id of all zeros is invalid. A later
//! version is read by its first four fields, as §3.2.4 asks of a version-00 parser.

use std::fmt;
use std::sync::Arc;

use ring::rand::SecureRandom;

/// The longest `X-Request-Id` taken from a client; a longer one is replaced by ours.
pub const MAX_REQUEST_ID: usize = 128;

/// A position in a distributed trace: the trace, the caller's span, the sampling flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The 16-byte trace id, shared by every span of the trace.
    pub trace_id: [u8; 16],
    /// The 8-byte id of the span this one descends from (or of this span, for our own).
    pub parent_id: [u8; 8],
    /// The trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl TraceParent {
    /// Reads a `traceparent` header value; `None` when it is not a valid one (the caller
    /// then starts a new trace, as §3.2.2 says).
    pub fn parse(value: &str) -> Option<TraceParent> {
        let value = value.trim_matches([' ', '\t']);
        if !value.is_ascii() {
            return None;
        }
        let version = u8::from_str_radix(value.get(0..2)?, 16).ok()?;
        if !is_lower_hex(&value[0..2]) || version == 0xff {
            return None;
        }
        // Version 00 is exactly 55 characters; a later version may add fields after a dash.
        if value.len() < 55 || (version == 0 && value.len() != 55) {
            return None;
        }
        if version != 0 && value.len() > 55 && value.as_bytes()[55] != b'-' {
            return None;
        }
        let bytes = value.as_bytes();
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let trace_id: [u8; 16] = decode_hex(&value[3..35])?;
        let parent_id: [u8; 8] = decode_hex(&value[36..52])?;
        let [flags] = decode_hex::<1>(&value[53..55])?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// A new trace, sampled, whose first span is ours.
    pub fn fresh() -> TraceParent {
        TraceParent {
            trace_id: random_nonzero(),
            parent_id: random_nonzero(),
            flags: 0x01,
        }
    }

    /// Our span inside the caller's trace: same trace id and flags, a new span id.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            parent_id: random_nonzero(),
            ..*self
        }
    }

    /// The trace id in lowercase hex, as log lines name it.
    pub fn trace_id_hex(&self) -> String {
        hex::encode(self.trace_id)
    }
}

impl fmt::Display for TraceParent {
    /// The header value, version 00.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex::encode(self.trace_id),
            hex::encode(self.parent_id),
            self.flags
        )
    }
}

fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn decode_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if !is_lower_hex(s) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Random bytes that are not all zero (an all-zero id is invalid). The system generator
/// failing is not expected; a random UUID's bytes stand in then.
fn random_nonzero<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if ring::rand::SystemRandom::new().fill(&mut out).is_err() || out == [0u8; N] {
        let uuid = uuid::Uuid::new_v4();
        for (o, b) in out.iter_mut().zip(uuid.as_bytes().iter().cycle()) {
            *o = *b;
        }
    }
    out
}

/// Whether a client's `X-Request-Id` is kept: 1 to [`MAX_REQUEST_ID`] characters among
/// letters, digits and `-._~:@+=/` (enough for UUIDs, ULIDs and the ids of common proxies;
/// nothing that could break a log line or a header).
pub fn acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_REQUEST_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~:@+=/".contains(&b))
}

/// A new request id: a random UUID.
pub fn new_request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The context of the request being served.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request id (the client's `X-Request-Id`, or ours).
    pub request_id: Arc<str>,
    /// Our span in the request's trace.
    pub trace: TraceParent,
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// Runs `future` with this context as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

/// The id of the request this task serves, if it serves one.
pub fn current_request_id() -> Option<Arc<str>> {
    CURRENT.try_with(|c| c.request_id.clone()).ok()
}

/// The `traceparent` to send on a call made for the current request: its trace, with the
/// request's own span (the one exported over OTLP) as the callee's parent. `None` outside a
/// request.
pub fn outgoing_traceparent() -> Option<String> {
    CURRENT.try_with(|c| c.trace.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_reads_back_as_written() {
        let parsed = TraceParent::parse(SAMPLE).expect("valid");
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(parsed.parent_id), "00f067aa0ba902b7");
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.to_string(), SAMPLE);
    }

    #[test]
    fn invalid_traceparents_are_refused() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_is_read_by_its_first_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        let parsed = TraceParent::parse(later).expect("readable");
        assert_eq!(parsed.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            TraceParent::parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"),
            None
        );
    }

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let parent = TraceParent::parse(SAMPLE).expect("valid");
        let child = parent.child();
        assert_eq!(child.trace_id, parent.trace_id);
        assert_eq!(child.flags, parent.flags);
        assert_ne!(child.parent_id, parent.parent_id);
        assert_eq!(TraceParent::parse(&child.to_string()), Some(child));
        let fresh = TraceParent::fresh();
        assert_ne!(fresh.trace_id, [0; 16]);
        assert_eq!(TraceParent::parse(&fresh.to_string()), Some(fresh));
    }

    #[test]
    fn request_ids_from_clients_are_kept_only_when_harmless() {
        assert!(acceptable_request_id(
            "0190b7e4-5f2a-7c3e-9d1a-2b3c4d5e6f70"
        ));
        assert!(acceptable_request_id("req_01HZX3:edge/7"));
        for bad in ["", "a b", "line\nbreak", "quote\"", "é", &"x".repeat(129)] {
            assert!(!acceptable_request_id(bad), "{bad:?}");
        }
        assert!(acceptable_request_id(&"x".repeat(128)));
        assert!(acceptable_request_id(&new_request_id()));
    }

    #[tokio::test]
    async fn the_context_is_seen_inside_its_scope_only() {
        assert!(current_request_id().is_none());
        assert!(outgoing_traceparent().is_none());
        let context = RequestContext {
            request_id: Arc::from("abc"),
            trace: TraceParent::parse(SAMPLE).expect("valid"),
        };
        let (id, outgoing) = context
            .scope(async { (current_request_id(), outgoing_traceparent()) })
            .await;
        assert_eq!(id.as_deref(), Some("abc"));
        let outgoing = TraceParent::parse(&outgoing.expect("inside")).expect("valid");
        assert_eq!(outgoing.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }
}
