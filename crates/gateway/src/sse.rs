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
    /// Decoded text not yet part of a complete event (line ends normalized to `\n`).
    buffer: String,
    /// Where in `buffer` a blank line may still be found: everything before it was searched.
    searched: usize,
    /// Bytes not decoded yet: a character, or a `\r\n`, cut by the end of a chunk.
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
        // A `\r` at the very end may be the first half of a `\r\n`.
        if self.pending[..valid].ends_with(b"\r") {
            valid -= 1;
        }
        self.decode(valid);
        let mut events = Vec::new();
        let mut consumed = 0;
        while let Some(found) = self.buffer[self.searched..].find("\n\n") {
            let end = self.searched + found + 2;
            let raw = self.buffer[consumed..end].trim_end_matches('\n');
            if !raw.is_empty() {
                events.push(Event {
                    raw: raw.to_owned(),
                });
            }
            consumed = end;
            self.searched = end;
        }
        self.buffer.drain(..consumed);
        // A newline at the end may begin the next blank line.
        self.searched = self.buffer.len() - usize::from(self.buffer.ends_with('\n'));
        events
    }

    /// Moves the first `valid` pending bytes into the text, line ends normalized.
    fn decode(&mut self, valid: usize) {
        let text = String::from_utf8_lossy(&self.pending[..valid]);
        if text.contains('\r') {
            self.buffer.push_str(&text.replace("\r\n", "\n"));
        } else {
            self.buffer.push_str(&text);
        }
        self.pending.drain(..valid);
    }

    /// Whatever is left when the stream ends (an unterminated event).
    pub(crate) fn finish(&mut self) -> Option<Event> {
        self.decode(self.pending.len());
        self.searched = 0;
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

    #[test]
    fn a_line_end_split_between_chunks_still_ends_the_event() {
        let mut p = Parser::default();
        assert!(p.push(b"data: a\r\n\r").is_empty());
        let events = p.push(b"\ndata: b\r");
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data().as_deref(), Some("a"));
        assert_eq!(p.finish().unwrap().raw, "data: b\r");
    }

    /// Where the search for the next blank line starts is always a character's start.
    #[test]
    fn text_ending_in_a_wide_character_is_searched_on() {
        let mut p = Parser::default();
        assert!(p.push("data: é".as_bytes()).is_empty());
        assert!(p.push("€\n".as_bytes()).is_empty());
        let events = p.push(b"\ndata: x\n\n");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data().as_deref(), Some("é€"));
    }

    /// A large answer arriving a few bytes at a time is found once, whole.
    #[test]
    fn an_event_in_many_small_chunks_is_one_event() {
        let data = format!("{{\"text\":\"{}\"}}", "x".repeat(100_000));
        let stream = format!("event: message\ndata: {data}\n\ndata: next\n\n");
        let mut p = Parser::default();
        let mut events = Vec::new();
        for chunk in stream.as_bytes().chunks(7) {
            events.extend(p.push(chunk));
        }
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data().as_deref(), Some(data.as_str()));
        assert_eq!(events[1].data().as_deref(), Some("next"));
        assert!(p.finish().is_none());
    }
}
