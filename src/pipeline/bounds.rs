//! A window's place in event time, as its report states it.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::time::format_rfc3339_ms;

/// A window's bounds in event time (Unix ms). Tumbling and sliding windows are
/// `[start, end)`; a count window's are its first and last event's times, fixed when it
/// closes. Serialized as the report's `window_start` / `window_end` (RFC 3339).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WindowBounds {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl WindowBounds {
    pub fn start_rfc3339(&self) -> String {
        format_rfc3339_ms(self.start_ms)
    }

    pub fn end_rfc3339(&self) -> String {
        format_rfc3339_ms(self.end_ms)
    }
}

impl Serialize for WindowBounds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("WindowBounds", 2)?;
        st.serialize_field("window_start", &self.start_rfc3339())?;
        st.serialize_field("window_end", &self.end_rfc3339())?;
        st.end()
    }
}
