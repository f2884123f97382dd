//! Follows the client's side of an HTTP/2 connection frame by frame (only
//! the 9-byte frame headers are looked at; payloads are skipped) and counts
//! RST_STREAM frames per one-second window.

use std::time::{Duration, Instant};

/// RFC 9113 §3.4: the client connection preface.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// RFC 9113 §6.4.
const RST_STREAM: u8 = 0x3;
const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Matching the preface; `n` bytes matched so far.
    Preface(usize),
    /// Reading a frame header; `n` of its 9 bytes seen.
    Header(usize),
    /// Skipping a payload; bytes left.
    Payload(usize),
    /// Not HTTP/2: nothing to do.
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Too many RST_STREAM frames in one second: close the connection.
    ResetFlood,
}

#[derive(Debug)]
pub struct FrameScanner {
    state: State,
    header: [u8; 9],
    max_per_window: u32,
    window_start: Option<Instant>,
    in_window: u32,
}

impl FrameScanner {
    pub fn new(max_resets_per_sec: u32) -> Self {
        Self {
            state: State::Preface(0),
            header: [0; 9],
            max_per_window: max_resets_per_sec,
            window_start: None,
            in_window: 0,
        }
    }

    /// True once the connection is known not to be HTTP/2.
    pub fn is_off(&self) -> bool {
        self.state == State::Off
    }

    /// Feeds bytes the client sent, in order.
    pub fn feed(&mut self, mut bytes: &[u8], now: Instant) -> Verdict {
        while !bytes.is_empty() {
            match self.state {
                State::Off => return Verdict::Ok,
                State::Preface(n) => {
                    let take = bytes.len().min(PREFACE.len() - n);
                    if bytes[..take] != PREFACE[n..n + take] {
                        self.state = State::Off;
                        return Verdict::Ok;
                    }
                    bytes = &bytes[take..];
                    self.state = if n + take == PREFACE.len() {
                        State::Header(0)
                    } else {
                        State::Preface(n + take)
                    };
                }
                State::Header(n) => {
                    let take = bytes.len().min(9 - n);
                    self.header[n..n + take].copy_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if n + take < 9 {
                        self.state = State::Header(n + take);
                        continue;
                    }
                    let len = usize::from(self.header[0]) << 16
                        | usize::from(self.header[1]) << 8
                        | usize::from(self.header[2]);
                    self.state = if len == 0 {
                        State::Header(0)
                    } else {
                        State::Payload(len)
                    };
                    if self.header[3] == RST_STREAM && self.count_reset(now) == Verdict::ResetFlood
                    {
                        return Verdict::ResetFlood;
                    }
                }
                State::Payload(left) => {
                    let take = bytes.len().min(left);
                    bytes = &bytes[take..];
                    self.state = if take == left {
                        State::Header(0)
                    } else {
                        State::Payload(left - take)
                    };
                }
            }
        }
        Verdict::Ok
    }

    fn count_reset(&mut self, now: Instant) -> Verdict {
        match self.window_start {
            Some(start) if now.duration_since(start) < WINDOW => self.in_window += 1,
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
            }
        }
        if self.in_window > self.max_per_window {
            Verdict::ResetFlood
        } else {
            Verdict::Ok
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = payload.len();
        let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, 0];
        f.extend_from_slice(&stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    pub(crate) fn rst(stream: u32) -> Vec<u8> {
        frame(RST_STREAM, stream, &8u32.to_be_bytes()) // CANCEL
    }

    pub(crate) fn preface_and_settings() -> Vec<u8> {
        let mut v = PREFACE.to_vec();
        v.extend(frame(0x4, 0, &[0, 3, 0, 0, 0, 100])); // SETTINGS
        v
    }

    #[test]
    fn counts_resets_across_split_reads() {
        let now = Instant::now();
        let mut s = FrameScanner::new(3);
        let mut wire = preface_and_settings();
        for i in 0..3 {
            wire.extend(frame(0x1, 2 * i + 1, &[0x82; 10])); // HEADERS
            wire.extend(rst(2 * i + 1));
        }
        // Byte by byte: state survives every split.
        for b in &wire {
            assert_eq!(s.feed(std::slice::from_ref(b), now), Verdict::Ok);
        }
        assert_eq!(s.feed(&rst(99), now), Verdict::ResetFlood);
    }

    #[test]
    fn window_slides() {
        let t0 = Instant::now();
        let mut s = FrameScanner::new(2);
        assert_eq!(s.feed(&preface_and_settings(), t0), Verdict::Ok);
        assert_eq!(s.feed(&[rst(1), rst(3)].concat(), t0), Verdict::Ok);
        assert_eq!(
            s.feed(&rst(5), t0 + Duration::from_millis(1100)),
            Verdict::Ok
        );
        assert_eq!(
            s.feed(&rst(7), t0 + Duration::from_millis(1200)),
            Verdict::Ok
        );
        assert_eq!(
            s.feed(&rst(9), t0 + Duration::from_millis(1300)),
            Verdict::ResetFlood
        );
    }

    #[test]
    fn http1_turns_the_scanner_off() {
        let mut s = FrameScanner::new(1);
        assert_eq!(s.feed(b"GET / HTTP/1.1\r\n", Instant::now()), Verdict::Ok);
        assert!(s.is_off());
        // Even bytes that look like RST_STREAM frames are ignored now.
        assert_eq!(
            s.feed(&[rst(1), rst(3), rst(5)].concat(), Instant::now()),
            Verdict::Ok
        );
    }
}
