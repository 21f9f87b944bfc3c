//! A small incremental parser for `text/event-stream` bodies: it splits the byte stream into events
//! so the gateway can inspect the one JSON-RPC response it cares about and pass every other event
//! through byte for byte.

/// One raw event block (without its terminating blank line).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    pub(crate) raw: String,
}

impl Event {
    /// The event's data (its `data:` lines joined with newlines), if any.
    pub(crate) fn data(&self) -> Option<String> {
        let lines: Vec<&str> = self
            .raw
            .lines()
            .filter_map(|l| {
                l.strip_prefix("data:")
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
            })
            .collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// The same event with its data replaced by `data` (other fields kept).
    pub(crate) fn with_data(&self, data: &str) -> Event {
        let mut out: Vec<String> = self
            .raw
            .lines()
            .filter(|l| !l.starts_with("data:"))
            .map(str::to_owned)
            .collect();
        out.extend(data.lines().map(|l| format!("data: {l}")));
        Event {
            raw: out.join("\n"),
        }
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        format!("{}\n\n", self.raw).into_bytes()
    }
}

/// Accumulates bytes and yields complete events.
#[derive(Default)]
pub(crate) struct Parser {
    buffer: String,
    pending: Vec<u8>,
}

impl Parser {
    pub(crate) fn push(&mut self, bytes: &[u8]) -> Vec<Event> {
        self.pending.extend_from_slice(bytes);
        // Decode all but an incomplete character at the end, which may straddle chunks; an
        // invalid sequence becomes U+FFFD (held back, it would stall the stream for good).
        let mut valid = 0;
        loop {
            match std::str::from_utf8(&self.pending[valid..]) {
                Ok(s) => {
                    valid += s.len();
                    break;
                }
                Err(e) => match e.error_len() {
                    Some(invalid) => valid += e.valid_up_to() + invalid,
                    None => {
                        valid += e.valid_up_to();
                        break;
                    }
                },
            }
        }
        let text: Vec<u8> = self.pending.drain(..valid).collect();
        self.buffer
            .push_str(&String::from_utf8_lossy(&text).replace("\r\n", "\n"));
        let mut events = Vec::new();
        while let Some(end) = self.buffer.find("\n\n") {
            let raw: String = self.buffer.drain(..end + 2).collect();
            let raw = raw.trim_end_matches('\n').to_owned();
            if !raw.is_empty() {
                events.push(Event { raw });
            }
        }
        events
    }

    /// Whatever is left when the stream ends (an unterminated event).
    pub(crate) fn finish(&mut self) -> Option<Event> {
        let rest = std::mem::take(&mut self.buffer);
        let rest = rest.trim_end_matches('\n');
        (!rest.is_empty()).then(|| Event {
            raw: rest.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_events_across_chunks() {
        let mut p = Parser::default();
        assert!(p.push(b"id: 0\nretry: 3000\n").is_empty());
        let events = p.push(b"data: \n\nevent: message\ndata: {\"a\":\r\ndata: 1}\r\n\r\ndata: x");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data().as_deref(), Some(""));
        assert_eq!(events[1].data().as_deref(), Some("{\"a\":\n1}"));
        assert_eq!(events[1].with_data("{}").raw, "event: message\ndata: {}");
        assert_eq!(p.finish().unwrap().raw, "data: x");
    }

    #[test]
    fn keeps_multibyte_characters_split_across_chunks() {
        let mut p = Parser::default();
        let bytes = "data: é\n\n".as_bytes();
        assert!(p.push(&bytes[..7]).is_empty());
        assert_eq!(p.push(&bytes[7..])[0].data().as_deref(), Some("é"));
    }

    #[test]
    fn an_invalid_byte_does_not_stall_the_stream() {
        let mut p = Parser::default();
        let events = p.push(b"data: \xff\xfeok\n\ndata: next\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data().as_deref(), Some("\u{fffd}\u{fffd}ok"));
        assert_eq!(events[1].data().as_deref(), Some("next"));
    }
}
