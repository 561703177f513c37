//! Streaming HTTP/1.1 message framing for the fixed-response server and the
//! load generator: bytes go in as they arrive (split anywhere), complete
//! messages come out. No allocation: a header line is looked at through a
//! small fixed window, which is all the two headers we read need.

/// Longest header line prefix kept (enough for `Content-Length:` and
/// `Connection:` with their values).
const LINE: usize = 32;

/// What the framer is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Head,
    Body,
}

/// Finds message boundaries in a byte stream: the head (start line and
/// headers, to the blank line), then `Content-Length` bytes of body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Framer {
    phase: Phase,
    line: [u8; LINE],
    line_len: u8,
    /// Bytes in the current line (not only the kept prefix).
    line_total: u16,
    lines: u16,
    content_length: u64,
    body_left: u64,
    /// The start line's status code (responses) or 0.
    status: u16,
    close: bool,
    started: bool,
    /// The last bytes of the start line (its HTTP version, whatever its length).
    tail: [u8; 9],
}

/// A complete message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Status code of a response (0 for a request).
    pub status: u16,
    /// The connection closes after this message: `Connection: close`, or
    /// HTTP/1.0 without `Connection: keep-alive` (RFC 9112 9.3).
    pub close: bool,
    pub body_len: u64,
}

/// A message head that cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A header line or the head as a whole is too long, or malformed.
    BadHead,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// True once any byte of the current message has been seen.
    pub fn in_message(&self) -> bool {
        self.started
    }

    /// Feeds bytes; calls `done` for each message completed. Returns the bytes
    /// consumed (all of them unless an error stops it).
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut done: impl FnMut(Message),
    ) -> Result<(), FrameError> {
        while !data.is_empty() {
            self.started = true;
            match self.phase {
                Phase::Head => {
                    let nl = memchr::memchr(b'\n', data);
                    // The usual case: a whole line in `data`, looked at where it is.
                    if let (Some(i), 0) = (nl, self.line_total) {
                        if i > 8192 {
                            return Err(FrameError::BadHead);
                        }
                        let line = &data[..i];
                        data = &data[i + 1..];
                        self.line_done(line, i, true)?;
                        if self.phase == Phase::Body && self.body_left == 0 {
                            done(self.finish());
                        }
                        continue;
                    }
                    // Else a line at a time across calls: keep a prefix.
                    let part = &data[..nl.unwrap_or(data.len())];
                    if self.lines == 0 {
                        // The start line's last bytes, shifted in at once.
                        let n = part.len().min(self.tail.len());
                        self.tail.copy_within(n.., 0);
                        let t = self.tail.len();
                        self.tail[t - n..].copy_from_slice(&part[part.len() - n..]);
                    }
                    let keep = part.len().min(LINE - self.line_len as usize);
                    let at = self.line_len as usize;
                    self.line[at..at + keep].copy_from_slice(&part[..keep]);
                    self.line_len += keep as u8;
                    self.line_total = self
                        .line_total
                        .saturating_add(u16::try_from(part.len()).unwrap_or(u16::MAX));
                    if self.line_total > 8192 {
                        return Err(FrameError::BadHead);
                    }
                    match nl {
                        Some(i) => {
                            data = &data[i + 1..];
                            self.end_line()?;
                            if self.phase == Phase::Body && self.body_left == 0 {
                                done(self.finish());
                            }
                        }
                        None => data = &[],
                    }
                }
                Phase::Body => {
                    let n = (data.len() as u64).min(self.body_left);
                    self.body_left -= n;
                    data = &data[n as usize..];
                    if self.body_left == 0 {
                        done(self.finish());
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Message {
        let m = Message {
            status: self.status,
            close: self.close,
            body_len: self.content_length,
        };
        *self = Framer::default();
        m
    }

    /// A line kept across calls has ended.
    fn end_line(&mut self) -> Result<(), FrameError> {
        let (line, total) = (self.line, usize::from(self.line_total));
        self.line_done(&line[..self.line_len as usize], total, false)
    }

    /// A line has ended: `line` is all of it (`whole`) or its kept prefix,
    /// `total` its length, without the LF.
    fn line_done(
        &mut self,
        mut line: &[u8],
        mut total: usize,
        whole: bool,
    ) -> Result<(), FrameError> {
        if line.len() == total {
            if let [rest @ .., b'\r'] = line {
                line = rest; // CRLF (a bare LF is accepted too, RFC 9112 2.2)
                total -= 1;
            }
        }
        let was_empty = total == 0;
        self.line_len = 0;
        self.line_total = 0;
        if was_empty {
            if self.lines == 0 {
                return Ok(()); // a stray CRLF between messages (RFC 9112 2.2)
            }
            self.phase = Phase::Body;
            self.body_left = self.content_length;
            return Ok(());
        }
        self.lines += 1;
        if self.lines > 100 {
            return Err(FrameError::BadHead);
        }
        if self.lines == 1 {
            // "HTTP/1.1 200 OK" (a response) or "GET / HTTP/1.1" (a request).
            if line.starts_with(b"HTTP/") {
                let code = line.get(9..12).ok_or(FrameError::BadHead)?;
                self.status = parse_u64(code).ok_or(FrameError::BadHead)? as u16;
                self.close = line.starts_with(b"HTTP/1.0");
            } else if whole {
                self.close = line.ends_with(b"HTTP/1.0");
            } else {
                let v = match &self.tail {
                    [.., b'\r'] => &self.tail[..8],
                    _ => &self.tail[1..],
                };
                self.close = v == b"HTTP/1.0";
            }
            return Ok(());
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            return Err(FrameError::BadHead);
        };
        // Both headers read here start with a C.
        if !matches!(line[0], b'c' | b'C') {
            return Ok(());
        }
        let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"content-length") {
            self.content_length = parse_u64(value).ok_or(FrameError::BadHead)?;
        } else if name.eq_ignore_ascii_case(b"connection") {
            if value.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if value.eq_ignore_ascii_case(b"keep-alive") {
                self.close = false;
            }
        }
        Ok(())
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 18 {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
    })
}

/// The server's fixed response, built once.
pub fn response(body_len: usize, close: bool) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nServer: sluice\r\nContent-Type: text/plain\r\nContent-Length: {body_len}\r\nConnection: {}\r\n\r\n",
        if close { "close" } else { "keep-alive" }
    )
    .into_bytes();
    v.extend(std::iter::repeat_n(b'x', body_len));
    v
}

/// The client's request, built once.
pub fn request(host: &str, path: &str, close: bool) -> Vec<u8> {
    request_sized(host, path, close, 0)
}

/// The client's request, padded with an `X-Pad` header to at least `min_len`
/// bytes (a request-size knob that needs no body).
pub fn request_sized(host: &str, path: &str, close: bool, min_len: usize) -> Vec<u8> {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice\r\nConnection: {}\r\n",
        if close { "close" } else { "keep-alive" }
    );
    let base = head.len() + 2;
    let mut v = head.into_bytes();
    // "X-Pad: " + pad + CRLF is at least 9 bytes.
    if min_len >= base + 9 {
        v.extend_from_slice(b"X-Pad: ");
        v.extend(std::iter::repeat_n(b'x', min_len - base - 9));
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"\r\n");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn messages(chunks: &[&[u8]]) -> Vec<Message> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.feed(c, |m| out.push(m)).unwrap();
        }
        out
    }

    #[test]
    fn response_split_anywhere() {
        let r = response(100, false);
        for cut in 0..r.len() {
            let m = messages(&[&r[..cut], &r[cut..]]);
            assert_eq!(
                m,
                vec![Message {
                    status: 200,
                    close: false,
                    body_len: 100
                }],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn pipelined_requests_and_close() {
        let mut bytes = request("h", "/", false);
        bytes.extend(request("h", "/", true));
        let m = messages(&[&bytes]);
        assert_eq!(m.len(), 2);
        assert!(!m[0].close && m[1].close);
        assert_eq!(m[0].status, 0);
    }

    /// HTTP/1.0 closes unless it asks to keep alive, however long its
    /// request line and wherever the bytes are split (ab sends HTTP/1.0).
    #[test]
    fn http_1_0_closes_by_default() {
        let long = format!("GET /{} HTTP/1.0\r\nHost: h\r\n\r\n", "p".repeat(100));
        for (req, close) in [
            ("GET / HTTP/1.0\r\nHost: h\r\n\r\n", true),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nHost: h\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", true),
            ("GET / HTTP/1.0\nHost: h\n\n", true),
            (long.as_str(), true),
            ("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", true),
        ] {
            let b = req.as_bytes();
            for cut in 0..b.len() {
                let m = messages(&[&b[..cut], &b[cut..]]);
                assert_eq!(m.len(), 1, "{req:?} cut at {cut}");
                assert_eq!(m[0].close, close, "{req:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn sized_requests_frame_as_one() {
        for len in [0, 50, 200, 1000] {
            let r = request_sized("h", "/", false, len);
            assert!(r.len() >= len.min(r.len()));
            if len >= 200 {
                assert_eq!(r.len(), len);
            }
            assert_eq!(messages(&[&r]).len(), 1, "{len}");
        }
    }

    #[test]
    fn bad_heads() {
        let mut f = Framer::new();
        assert!(
            f.feed(b"GET / HTTP/1.1\r\nno colon here\r\n\r\n", |_| {})
                .is_err()
        );
        let mut f = Framer::new();
        assert!(
            f.feed(b"HTTP/1.1 200 OK\r\nContent-Length: x1\r\n\r\n", |_| {})
                .is_err()
        );
        let mut f = Framer::new();
        let long = vec![b'a'; 9000];
        assert!(f.feed(&long, |_| {}).is_err());
    }
}
