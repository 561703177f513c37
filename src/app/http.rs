//! Streaming HTTP/1.1 message framing for the fixed-response server and the
//! load generator: bytes go in as they arrive (split anywhere), complete
//! messages come out. No allocation: a header line is looked at through a
//! small fixed window, which is all the few headers we read need.
//!
//! A body is delimited as RFC 9112 section 6.3 says: none for a response to
//! HEAD, for 1xx (interim: skipped), 204 and 304; `Transfer-Encoding:
//! chunked` (chunk extensions and trailers read past); `Content-Length`; and
//! for a response with neither, the connection's close ([`Framer::eof`]).
//! The usual case, a `Content-Length` message whose whole head is in one
//! read, takes the fast path (and for a repeated head, [`HeadMemo`]); the
//! other framings are read by small cold steps beside it.

/// Longest header line prefix kept (enough for `Content-Length:`,
/// `Connection:` and `Transfer-Encoding:` with their usual values).
const LINE: usize = 32;

/// What the framer is reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Phase {
    #[default]
    Head,
    /// `body_left` bytes of a `Content-Length` body.
    Body,
    /// A chunk-size line: hex digits, maybe extensions, to its LF.
    ChunkSize,
    /// `body_left` bytes of chunk data.
    ChunkData,
    /// The CRLF after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk, to the blank line.
    Trailers,
    /// A response body that ends when the connection does.
    UntilClose,
}

/// How a message's body is delimited, known once its head has ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Body {
    /// `Content-Length` bytes (0 without the header, for a request).
    #[default]
    Length,
    Chunked,
    /// To the connection's close (a response with no length).
    UntilClose,
    /// None (204, 304, 101).
    Empty,
    /// A 1xx interim response: no body, and the real one follows.
    Interim,
}

/// How a `Transfer-Encoding` header ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Coding {
    #[default]
    None,
    Chunked,
    /// A coding other than chunked last: no way to tell the body's end.
    Other,
}

// What the current line (of the head, a chunk size or a trailer) has shown
// so far: bits of `Framer::flags` (one byte keeps the framer, and the
// connection state around it, small enough to copy inline).
/// A colon, kept or not (a head line).
const COLON: u8 = 1;
/// Its last byte so far is a CR.
const CR: u8 = 2;
/// A chunk size's hex digits.
const DIGITS: u8 = 4;
/// In a chunk's extensions (after `;`): anything to the line end.
const EXT: u8 = 8;
/// Whitespace after a chunk size: only `;` or the line end may follow.
const BLANK: u8 = 16;

/// Finds message boundaries in a byte stream: the head (start line and
/// headers, to the blank line), then the body as the head delimits it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Framer {
    phase: Phase,
    line: [u8; LINE],
    line_len: u8,
    /// Bytes in the current line (not only the kept prefix).
    line_total: u16,
    /// What the current line has shown ([`COLON`], [`CR`], ...).
    flags: u8,
    /// What the head says; once the body is read, `content_length` counts
    /// the body bytes of a chunked or until-close body.
    head: Head,
    body_left: u64,
    /// The response answers a HEAD request: no body, whatever its head says.
    no_body: bool,
    /// The last bytes of the start line (its HTTP version, whatever its length).
    tail: [u8; 9],
}

/// A connection's framer, held only inside a message: between messages (an
/// idle keep-alive connection) a framer is in its initial state, so nothing
/// is kept but an empty pointer. Bytes that arrive at a message boundary are
/// framed by a fresh framer on the stack; only if they end inside a message
/// does it move into a box from the shard's (the thread's) pool, which it
/// goes back to once its message is complete.
#[derive(Debug, Clone, Default)]
pub struct LazyFramer {
    held: Option<Box<Framer>>,
}

impl LazyFramer {
    pub fn new() -> LazyFramer {
        LazyFramer::default()
    }

    /// True once a byte of the current message has been seen
    /// (`Framer::in_message`).
    pub fn in_message(&self) -> bool {
        self.held.as_ref().is_some_and(|f| f.in_message())
    }

    /// `Framer::expect_no_body`: a framer expecting a bodiless response is
    /// not in its initial state, so it is held until that response ends.
    #[inline]
    pub fn expect_no_body(&mut self, yes: bool) {
        if yes || self.held.is_some() {
            self.expect_no_body_held(yes);
        }
    }

    #[cold]
    #[inline(never)]
    fn expect_no_body_held(&mut self, yes: bool) {
        match &mut self.held {
            Some(f) => {
                f.expect_no_body(yes);
                self.settle_held();
            }
            None if yes => {
                let mut f = Framer::new();
                f.expect_no_body(true);
                self.held = Some(framer_pool::boxed(f));
            }
            None => {}
        }
    }

    /// `Framer::feed_memo`, the framer taken (fresh, or the one held) for
    /// these bytes and kept only if they end inside a message.
    #[inline]
    pub fn feed_memo(
        &mut self,
        data: &[u8],
        memo: &mut HeadMemo,
        done: impl FnMut(Message),
    ) -> Result<(), FrameError> {
        // The usual case: at a boundary, one whole message whose head is the
        // memo's (the framer would frame it in one step and end at rest).
        if self.held.is_none() {
            if let Some((n, head)) = memo.get(data) {
                if (data.len() - n) as u64 == head.content_length {
                    let mut done = done;
                    done(Message {
                        status: head.status,
                        close: head.close,
                        body_len: head.content_length,
                    });
                    return Ok(());
                }
            }
        }
        // One call of the framer (inlined once), on the held one or a fresh one.
        let mut fresh = Framer::new();
        let held = self.held.is_some();
        let f = match &mut self.held {
            Some(f) => &mut **f,
            None => &mut fresh,
        };
        let r = f.feed_memo(data, memo, done);
        if held {
            self.settle_held();
        } else if !fresh.at_rest() {
            self.held = Some(framer_pool::boxed(fresh));
        }
        r
    }

    /// `Framer::eof` (a framer at rest has nothing to end).
    pub fn eof(&mut self) -> Result<Option<Message>, FrameError> {
        match &mut self.held {
            Some(f) => {
                let r = f.eof();
                self.settle_held();
                r
            }
            None => Ok(None),
        }
    }

    /// Bytes held outside the connection (0 between messages).
    pub fn memory(&self) -> usize {
        self.held
            .as_ref()
            .map_or(0, |_| std::mem::size_of::<Framer>())
    }

    /// The held framer back to the pool if it is at rest.
    #[inline]
    fn settle_held(&mut self) {
        if self.held.as_ref().is_some_and(|f| f.at_rest()) {
            if let Some(f) = self.held.take() {
                framer_pool::give(f);
            }
        }
    }
}

/// Boxed framers for messages that span reads, reused per thread (a shard is
/// one thread): a burst of connections mid-message leaves a bounded number
/// behind.
mod framer_pool {
    use super::Framer;
    use std::cell::RefCell;

    /// Framers kept at most (a few hundred kB).
    const KEEP: usize = 4096;

    thread_local! {
        // The boxes themselves are what is kept: a connection holds one.
        #[allow(clippy::vec_box)]
        static FREE: RefCell<Vec<Box<Framer>>> = const { RefCell::new(Vec::new()) };
    }

    /// `f` in a box, one from the pool if there is one.
    pub(super) fn boxed(f: Framer) -> Box<Framer> {
        match FREE.with(|p| p.borrow_mut().pop()) {
            Some(mut b) => {
                *b = f;
                b
            }
            None => Box::new(f),
        }
    }

    pub(super) fn give(b: Box<Framer>) {
        FREE.with(|p| {
            let mut p = p.borrow_mut();
            if p.len() < KEEP {
                p.push(b);
            }
        });
    }
}

/// A complete message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message {
    /// Status code of a response (0 for a request).
    pub status: u16,
    /// The connection closes after this message: `Connection: close`,
    /// HTTP/1.0 without `Connection: keep-alive` (RFC 9112 9.3), or a body
    /// that only the close delimits.
    pub close: bool,
    /// Body bytes received (chunked: the chunks' data, without their framing).
    pub body_len: u64,
}

/// A message that cannot be framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameError {
    /// A header line or the head as a whole is too long, or malformed; or
    /// a chunk's framing is.
    BadHead,
    /// The connection ended inside a message.
    Truncated,
}

impl Framer {
    pub fn new() -> Framer {
        Framer::default()
    }

    /// In its initial state (between messages, no bodiless response
    /// expected): a fresh framer would frame what follows the same way.
    #[inline]
    fn at_rest(&self) -> bool {
        // (A line's kept prefix and flags are empty while it has no bytes.)
        let rest = self.phase == Phase::Head
            && self.head.lines == 0
            && self.line_total == 0
            && !self.no_body;
        // The kept bytes of a line are read only within that line.
        debug_assert!(
            !rest
                || Framer {
                    line: [0; LINE],
                    tail: [0; 9],
                    ..*self
                } == Framer::default(),
            "{self:?}"
        );
        rest
    }

    /// True once a byte of the current message (not of a blank line
    /// before it) has been seen.
    pub fn in_message(&self) -> bool {
        self.phase != Phase::Head || self.head.lines > 0 || self.line_total > 0
    }

    /// The next response answers a HEAD request (`true`): it has no body
    /// whatever its head says (RFC 9112 6.3 item 1). Set before its bytes
    /// arrive; a finished message clears it.
    pub fn expect_no_body(&mut self, yes: bool) {
        self.no_body = yes;
    }

    /// Feeds bytes; calls `done` for each message completed. Returns the bytes
    /// consumed (all of them unless an error stops it).
    pub fn feed(&mut self, data: &[u8], done: impl FnMut(Message)) -> Result<(), FrameError> {
        self.feed_with::<true>(data, None, done)
    }

    /// `feed`, first comparing a fresh message's head with the last head
    /// `memo` saw: the same bytes frame the same way, so a repeated head (a
    /// load generator's requests, a server's responses) costs a compare
    /// instead of a parse.
    pub fn feed_memo(
        &mut self,
        data: &[u8],
        memo: &mut HeadMemo,
        done: impl FnMut(Message),
    ) -> Result<(), FrameError> {
        self.feed_with::<true>(data, Some(memo), done)
    }

    /// The connection has ended (the peer's FIN): the message it delimits,
    /// if one was being read to the close; `Truncated` if it ended inside
    /// any other message; else nothing.
    pub fn eof(&mut self) -> Result<Option<Message>, FrameError> {
        match self.phase {
            Phase::UntilClose => Ok(Some(self.finish())),
            _ if self.in_message() => Err(FrameError::Truncated),
            _ => Ok(None),
        }
    }

    /// `feed`, with the fast path for whole heads or (tests) without, and
    /// with a memo of the last head or without.
    #[inline]
    fn feed_with<const FAST: bool>(
        &mut self,
        mut data: &[u8],
        mut memo: Option<&mut HeadMemo>,
        mut done: impl FnMut(Message),
    ) -> Result<(), FrameError> {
        while !data.is_empty() {
            if self.phase == Phase::Body {
                let n = (data.len() as u64).min(self.body_left);
                self.body_left -= n;
                data = &data[n as usize..];
                if self.body_left == 0 {
                    done(self.finish());
                }
            } else if self.phase != Phase::Head {
                data = self.feed_rare(data, &mut done)?;
            } else if FAST && self.head.lines == 0 && self.line_total == 0 {
                // A fresh message whose head is all in `data`: one compare
                // with the last usual head (the memo keeps only those), or
                // one scan.
                let hit = match memo.as_deref_mut() {
                    Some(m) if !self.no_body => m.get(data),
                    _ => None,
                };
                if let Some((n, head)) = hit {
                    data = &data[n..];
                    self.usual_body(head, &mut done);
                    continue;
                }
                if let Some((n, head)) = fast_head(data) {
                    if head.body == Body::Length && !self.no_body {
                        if let Some(m) = memo.as_deref_mut() {
                            m.set(&data[..n], head);
                        }
                        self.usual_body(head, &mut done);
                    } else {
                        self.head = head;
                        self.body_start(&mut done);
                    }
                    data = &data[n..];
                    continue;
                }
                data = self.feed_head(data, &mut done)?;
            } else {
                data = self.feed_head(data, &mut done)?;
            }
        }
        Ok(())
    }

    /// A fresh head framed by its `Content-Length` (the usual case): the
    /// fields it needs (the rest of a fresh head is already default), then
    /// its body.
    #[inline(always)]
    fn usual_body(&mut self, head: Head, done: &mut impl FnMut(Message)) {
        self.head.lines = head.lines;
        self.head.status = head.status;
        self.head.close = head.close;
        self.head.content_length = head.content_length;
        self.phase = Phase::Body;
        self.body_left = head.content_length;
        if self.body_left == 0 {
            done(self.finish());
        }
    }

    /// The framings other than a `Content-Length` body, kept out of the
    /// usual path: one step of a chunked body, or a body to the close.
    #[cold]
    #[inline(never)]
    fn feed_rare<'d>(
        &mut self,
        data: &'d [u8],
        done: &mut dyn FnMut(Message),
    ) -> Result<&'d [u8], FrameError> {
        match self.phase {
            Phase::ChunkSize => self.chunk_size(data),
            Phase::ChunkData => Ok(self.chunk_data(data)),
            Phase::ChunkEnd => self.chunk_end(data),
            Phase::Trailers => self.trailer(data, done),
            Phase::UntilClose => {
                self.head.content_length += data.len() as u64;
                Ok(&[])
            }
            // Not reached (the caller reads these phases itself); if it
            // were, all of `data` is taken and nothing framed.
            Phase::Head | Phase::Body => Err(FrameError::BadHead),
        }
    }

    /// The head has ended (its blank line read): start its body, or finish
    /// a message without one, or skip an interim response.
    #[cold]
    #[inline(never)]
    fn body_start(&mut self, done: &mut impl FnMut(Message)) {
        let body = match self.head.body {
            Body::Interim => Body::Interim,
            _ if self.no_body => Body::Empty,
            b => b,
        };
        match body {
            Body::Length => {
                self.phase = Phase::Body;
                self.body_left = self.head.content_length;
                if self.body_left == 0 {
                    done(self.finish());
                }
            }
            Body::Chunked => {
                self.phase = Phase::ChunkSize;
                self.head.content_length = 0;
                self.body_left = 0;
                self.flags = 0;
                self.line_total = 0;
            }
            Body::UntilClose => {
                self.phase = Phase::UntilClose;
                self.head.content_length = 0;
                self.head.close = true;
            }
            Body::Empty => {
                self.head.content_length = 0;
                done(self.finish());
            }
            Body::Interim => {
                // 100 Continue, 103 Early Hints, ...: the final response
                // follows, to the same request.
                *self = Framer {
                    no_body: self.no_body,
                    ..Framer::default()
                };
            }
        }
    }

    /// A chunk-size line (RFC 9112 7.1): hex digits, optional whitespace,
    /// optional extensions after `;` (read past), CRLF or LF.
    #[inline]
    fn chunk_size<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], FrameError> {
        for (i, &b) in data.iter().enumerate() {
            self.line_total += 1;
            if self.line_total > 4096 {
                return Err(FrameError::BadHead);
            }
            let f = self.flags;
            if b == b'\n' {
                if f & DIGITS == 0 {
                    return Err(FrameError::BadHead);
                }
                self.line_total = 0;
                self.flags = 0;
                self.phase = if self.body_left == 0 {
                    Phase::Trailers
                } else {
                    Phase::ChunkData
                };
                return Ok(&data[i + 1..]);
            }
            if f & CR != 0 {
                return Err(FrameError::BadHead); // a CR only before the LF
            }
            match b {
                b'\r' => self.flags |= CR,
                _ if f & EXT != 0 => {}
                b';' if f & DIGITS != 0 => self.flags |= EXT,
                b' ' | b'\t' if f & DIGITS != 0 => self.flags |= BLANK,
                _ => {
                    let v = (b as char).to_digit(16).ok_or(FrameError::BadHead)?;
                    if f & BLANK != 0 || self.body_left >> 60 != 0 {
                        return Err(FrameError::BadHead);
                    }
                    self.body_left = self.body_left << 4 | u64::from(v);
                    self.flags |= DIGITS;
                }
            }
        }
        Ok(&[])
    }

    /// Chunk data: counted as body, skipped.
    #[inline]
    fn chunk_data<'d>(&mut self, data: &'d [u8]) -> &'d [u8] {
        let n = (data.len() as u64).min(self.body_left);
        self.body_left -= n;
        self.head.content_length += n;
        if self.body_left == 0 {
            self.phase = Phase::ChunkEnd;
        }
        &data[n as usize..]
    }

    /// The CRLF (or bare LF) that ends a chunk's data.
    #[inline]
    fn chunk_end<'d>(&mut self, data: &'d [u8]) -> Result<&'d [u8], FrameError> {
        match data[0] {
            b'\r' if self.flags & CR == 0 => self.flags |= CR,
            b'\n' => {
                self.flags = 0;
                self.phase = Phase::ChunkSize;
            }
            _ => return Err(FrameError::BadHead),
        }
        Ok(&data[1..])
    }

    /// Trailer fields after the last chunk, read past to the blank line
    /// that ends the message.
    #[inline]
    fn trailer<'d>(
        &mut self,
        data: &'d [u8],
        done: &mut dyn FnMut(Message),
    ) -> Result<&'d [u8], FrameError> {
        let nl = memchr::memchr(b'\n', data);
        let part = &data[..nl.unwrap_or(data.len())];
        if let Some(&last) = part.last() {
            self.line_total = self
                .line_total
                .saturating_add(u16::try_from(part.len()).unwrap_or(u16::MAX));
            self.flags = if last == b'\r' { CR } else { 0 };
            if self.line_total > 8192 {
                return Err(FrameError::BadHead);
            }
        }
        let Some(i) = nl else {
            return Ok(&[]);
        };
        let blank = self.line_total == 0 || (self.line_total == 1 && self.flags & CR != 0);
        self.line_total = 0;
        self.flags = 0;
        if blank {
            done(self.finish());
        } else {
            self.head.lines += 1;
            if self.head.lines > 200 {
                return Err(FrameError::BadHead);
            }
        }
        Ok(&data[i + 1..])
    }

    /// The general path: at most one line of the head; returns what is left.
    fn feed_head<'d>(
        &mut self,
        mut data: &'d [u8],
        done: &mut impl FnMut(Message),
    ) -> Result<&'d [u8], FrameError> {
        let nl = memchr::memchr(b'\n', data);
        // The usual case: a whole line in `data`, looked at where it is.
        if let (Some(i), 0) = (nl, self.line_total) {
            if i > 8192 {
                return Err(FrameError::BadHead);
            }
            let line = &data[..i];
            data = &data[i + 1..];
            if self.line_done(line, i, true)? {
                self.body_start(done);
            }
            return Ok(data);
        }
        // Else a line at a time across calls: keep a prefix.
        let part = &data[..nl.unwrap_or(data.len())];
        if self.head.lines == 0 {
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
        if memchr::memchr(b':', part).is_some() {
            self.flags |= COLON;
        }
        if let Some(&last) = part.last() {
            self.flags = (self.flags & !CR) | if last == b'\r' { CR } else { 0 };
        }
        self.line_total = self
            .line_total
            .saturating_add(u16::try_from(part.len()).unwrap_or(u16::MAX));
        if self.line_total > 8192 {
            return Err(FrameError::BadHead);
        }
        match nl {
            Some(i) => {
                data = &data[i + 1..];
                if self.end_line()? {
                    self.body_start(done);
                }
            }
            None => data = &[],
        }
        Ok(data)
    }

    fn finish(&mut self) -> Message {
        let m = Message {
            status: self.head.status,
            close: self.head.close,
            body_len: self.head.content_length,
        };
        *self = Framer::default();
        m
    }

    /// A line kept across calls has ended.
    fn end_line(&mut self) -> Result<bool, FrameError> {
        let (line, total) = (self.line, usize::from(self.line_total));
        self.line_done(&line[..self.line_len as usize], total, false)
    }

    /// A line has ended: `line` is all of it (`whole`) or its kept prefix,
    /// `total` its length, without the LF. True if it was the blank line
    /// that ends the head.
    fn line_done(
        &mut self,
        mut line: &[u8],
        mut total: usize,
        whole: bool,
    ) -> Result<bool, FrameError> {
        if line.len() == total {
            if let [rest @ .., b'\r'] = line {
                line = rest; // CRLF (a bare LF is accepted too, RFC 9112 2.2)
                total -= 1;
            }
        } else if self.flags & CR != 0 {
            total -= 1; // the CR of a CRLF, not kept
        }
        let was_empty = total == 0;
        let colon_seen = self.flags & COLON != 0;
        self.line_len = 0;
        self.line_total = 0;
        self.flags = 0;
        if was_empty {
            if self.head.lines == 0 {
                return Ok(false); // a stray CRLF between messages (RFC 9112 2.2)
            }
            self.head.end()?;
            return Ok(true);
        }
        self.head.lines += 1;
        if self.head.lines > 100 {
            return Err(FrameError::BadHead);
        }
        if self.head.lines == 1 {
            if whole || line.starts_with(b"HTTP/") {
                (self.head.status, self.head.close) = start_line(line)?;
            } else {
                let v = match &self.tail {
                    [.., b'\r'] => &self.tail[..8],
                    _ => &self.tail[1..],
                };
                self.head.close = v == b"HTTP/1.0";
            }
            return Ok(false);
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            if !whole && colon_seen {
                return Ok(false); // a name longer than the kept prefix: none we read
            }
            return Err(FrameError::BadHead);
        };
        // The headers read here start with a C or a T.
        if !matches!(line[0], b'c' | b'C' | b't' | b'T') {
            return Ok(false);
        }
        if line.len() < total {
            // Only a prefix was kept: a value we read must be all there.
            let name = &line[..colon];
            if CONTENT_LENGTH.eq(name) || is_transfer_encoding(name) {
                return Err(FrameError::BadHead);
            }
        }
        header(line, colon, &mut self.head)?;
        Ok(false)
    }
}

/// A start line, all of it: "HTTP/1.1 200 OK" (a response: its status code
/// and whether it is HTTP/1.0) or "GET / HTTP/1.1" (a request: 0, and
/// whether it is HTTP/1.0).
fn start_line(line: &[u8]) -> Result<(u16, bool), FrameError> {
    if line.starts_with(b"HTTP/") {
        let code = line.get(9..12).ok_or(FrameError::BadHead)?;
        let status = parse_u64(code).ok_or(FrameError::BadHead)? as u16;
        if status < 100 {
            return Err(FrameError::BadHead);
        }
        Ok((status, line.starts_with(b"HTTP/1.0")))
    } else {
        Ok((0, line.ends_with(b"HTTP/1.0")))
    }
}

fn is_transfer_encoding(name: &[u8]) -> bool {
    name.len() == 17 && name.eq_ignore_ascii_case(b"transfer-encoding")
}

/// A header line starting with a C or a T (or its kept prefix) with its
/// first colon at `colon`: reads `Content-Length`, `Connection` and
/// `Transfer-Encoding`, ignores the rest.
#[inline(never)]
fn header(line: &[u8], colon: usize, head: &mut Head) -> Result<(), FrameError> {
    let name = &line[..colon];
    if CONTENT_LENGTH.eq(name) {
        let value = trim(&line[colon + 1..]);
        let n = parse_u64(value).ok_or(FrameError::BadHead)?;
        if head.length && head.content_length != n {
            return Err(FrameError::BadHead); // two lengths (RFC 9112 6.3 item 5)
        }
        head.length = true;
        head.content_length = n;
    } else if CONNECTION.eq(name) {
        let value = trim(&line[colon + 1..]);
        if CLOSE.eq(value) {
            head.close = true;
        } else if KEEP_ALIVE.eq(value) {
            head.close = false;
        } else if value.contains(&b',') {
            // A list of options (RFC 9110 7.6.1): close wins.
            for option in value.split(|&c| c == b',').map(trim) {
                if CLOSE.eq(option) {
                    head.close = true;
                } else if KEEP_ALIVE.eq(option) && !head.close {
                    head.close = false;
                }
            }
        }
    } else if is_transfer_encoding(name) {
        // What counts is the last coding (RFC 9112 6.3 item 4).
        let value = &line[colon + 1..];
        let last = trim(value.rsplit(|&c| c == b',').next().unwrap_or(value));
        if last.eq_ignore_ascii_case(b"chunked") {
            head.coding = Coding::Chunked;
        } else if !last.is_empty() {
            head.coding = Coding::Other;
        }
    }
    Ok(())
}

/// What a message's head says: found by [`fast_head`] or line by line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Head {
    lines: u16,
    status: u16,
    close: bool,
    /// How the body is delimited (set by [`Head::end`]).
    body: Body,
    /// A `Content-Length` header was read (its value: `content_length`).
    length: bool,
    /// What `Transfer-Encoding` ends with.
    coding: Coding,
    content_length: u64,
}

impl Head {
    /// The head has ended: how its body is delimited (RFC 9112 6.3).
    fn end(&mut self) -> Result<(), FrameError> {
        self.body = match self.status {
            // A request: chunked, or its Content-Length (0 without).
            0 if self.coding == Coding::Chunked => Body::Chunked,
            0 if self.coding == Coding::Other => return Err(FrameError::BadHead),
            0 => Body::Length,
            101 => {
                self.close = true; // the connection leaves HTTP/1.1
                Body::Empty
            }
            100..=199 => Body::Interim,
            204 | 304 => Body::Empty,
            _ if self.coding == Coding::Chunked => {
                // With a Content-Length too: the coding wins, and the
                // connection is not to be trusted further (6.3 item 3).
                self.close |= self.length;
                Body::Chunked
            }
            _ if self.length && self.coding == Coding::None => Body::Length,
            _ => Body::UntilClose,
        };
        Ok(())
    }
}

/// Heads longer than this take the general path.
const FAST_HEAD: usize = 4096;

/// Heads up to this long are remembered by a [`HeadMemo`].
const MEMO_HEAD: usize = 256;

/// The last whole head a shard's framers parsed on the fast path whose body
/// its `Content-Length` frames, and what it said (one per direction:
/// requests, responses). Messages from a load generator, and a server's
/// responses, repeat their heads byte for byte; what the same bytes frame to
/// need not be parsed again. (A response to HEAD does not look it up.)
#[derive(Debug, Clone)]
pub struct HeadMemo {
    len: usize,
    bytes: [u8; MEMO_HEAD],
    head: Head,
}

impl Default for HeadMemo {
    fn default() -> HeadMemo {
        HeadMemo {
            len: 0,
            bytes: [0; MEMO_HEAD],
            head: Head::default(),
        }
    }
}

impl HeadMemo {
    /// The remembered head, if `data` starts with its bytes (all of them,
    /// through the blank line that ends it).
    #[inline]
    fn get(&self, data: &[u8]) -> Option<(usize, Head)> {
        let n = self.len;
        (n > 0 && data.get(..n) == Some(&self.bytes[..n])).then_some((n, self.head))
    }

    /// Remembers `bytes`, a whole head, and what it frames to (if short enough).
    fn set(&mut self, bytes: &[u8], head: Head) {
        if bytes.len() <= MEMO_HEAD {
            self.bytes[..bytes.len()].copy_from_slice(bytes);
            self.len = bytes.len();
            self.head = head;
        }
    }
}

/// A shard's two head memos: the requests its servers read, the responses its
/// clients read.
#[derive(Debug, Clone, Default)]
pub struct HeadMemos {
    pub requests: HeadMemo,
    pub responses: HeadMemo,
}

/// The fast path for a fresh message: if `data` holds its whole head (within
/// [`FAST_HEAD`] bytes) and the general path would take it without an error,
/// what that path would find and the head's length; else `None` (the general
/// path then reads the same bytes, errors included). Sixteen bytes at a time,
/// the line ends and colons come out as bit masks; the head is then walked
/// from one of those bytes to the next, so each byte is looked at once. A
/// header line is looked at only for its first colon, and further only if it
/// starts with a C or a T.
fn fast_head(data: &[u8]) -> Option<(usize, Head)> {
    let limit = data.len().min(FAST_HEAD);
    let mut head = Head::default();
    let mut start = 0; // of the current line
    let mut colon = usize::MAX; // the current line's first colon, if any
    let mut base = 0;
    while base < limit {
        let (nl, co) = masks16(data, base);
        let mut events = nl | co;
        while events != 0 {
            let k = events.trailing_zeros();
            events &= events - 1;
            let at = base + k as usize;
            if nl & (1 << k) == 0 {
                colon = colon.min(at);
                continue;
            }
            // The line [start, at), without a CR before its LF.
            let mut end = at;
            if end > start && data[end - 1] == b'\r' {
                end -= 1;
            }
            let line_start = start;
            let line_colon = colon;
            start = at + 1;
            colon = usize::MAX;
            if end == line_start {
                // The blank line, or a stray CRLF before the start line (the
                // general path's).
                if head.lines == 0 {
                    return None;
                }
                head.end().ok()?;
                return Some((start, head));
            }
            let line = &data[line_start..end];
            head.lines += 1;
            if head.lines == 1 {
                (head.status, head.close) = start_line(line).ok()?;
                continue;
            }
            // A colon is never the CR, so one seen in this line is before `end`.
            if line_colon == usize::MAX || head.lines > 100 {
                return None;
            }
            if matches!(line[0], b'c' | b'C' | b't' | b'T') {
                header(line, line_colon - line_start, &mut head).ok()?;
            }
        }
        base += 16;
    }
    None
}

/// Bit `i` of the first mask is set where `data[at + i]` is a LF, of the
/// second where it is a colon, for the 16 bytes from `at` (zeros past the
/// end of `data`). One of this crate's documented hot spots: with SSE2
/// (every x86_64 has it) the 16 bytes are compared at once, else a word at a
/// time ([`masks16_swar`]; the compiler does not vectorise that well).
#[inline(always)]
fn masks16(data: &[u8], at: usize) -> (u32, u32) {
    let (lo, hi) = words16(data, at);
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8};
        // SAFETY: these intrinsics only need SSE2, which this build's target
        // has (the cfg above); they touch no memory.
        unsafe {
            let v = _mm_set_epi64x(hi as i64, lo as i64);
            let nl = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b'\n' as i8)));
            let co = _mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(b':' as i8)));
            (nl as u32, co as u32)
        }
    }
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    masks16_swar(lo, hi)
}

/// [`masks16`] a word at a time, without SIMD.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn masks16_swar(lo: u64, hi: u64) -> (u32, u32) {
    let m = |c: u8| bits(eq_bytes(lo, c)) | (bits(eq_bytes(hi, c)) << 8);
    (m(b'\n'), m(b':'))
}

/// The high bits of the eight bytes of `m` (as [`eq_bytes`] sets them) as
/// the low eight bits of the result: a multiply gathers them in the top byte.
#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
#[inline]
fn bits(m: u64) -> u32 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

/// The 16 bytes of `data` from `at` as two little-endian words, zeros past
/// its end.
#[inline(always)]
fn words16(data: &[u8], at: usize) -> (u64, u64) {
    match data.get(at..at + 16) {
        Some(w) => (
            u64::from_le_bytes(w[..8].try_into().unwrap()),
            u64::from_le_bytes(w[8..].try_into().unwrap()),
        ),
        None => {
            let mut w = [0u8; 16];
            let rest = &data[at..];
            w[..rest.len()].copy_from_slice(rest);
            (
                u64::from_le_bytes(w[..8].try_into().unwrap()),
                u64::from_le_bytes(w[8..].try_into().unwrap()),
            )
        }
    }
}

/// 0x80 in each byte of `w` that is `c`, 0 in the others (exact: no carries
/// between bytes).
#[inline]
fn eq_bytes(w: u64, c: u8) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let x = w ^ (0x0101_0101_0101_0101 * u64::from(c));
    // High bit of each byte of `t`: the byte of `x` is not zero.
    let t = ((x & LOW7) + LOW7) | x;
    !(t | LOW7)
}

/// A lowercase ASCII token (4 to 16 bytes) compared ignoring ASCII case a
/// word at a time: its first and last (overlapping) 8 bytes (4 if shorter),
/// letters with 0x20 or-ed in (which maps exactly the upper and lower case of
/// a letter to the lower), other bytes as they are.
struct Token {
    len: usize,
    first: u64,
    first_mask: u64,
    last: u64,
    last_mask: u64,
}

impl Token {
    const fn new(t: &[u8]) -> Token {
        assert!(t.len() >= 4 && t.len() <= 16);
        let w = if t.len() >= 8 { 8 } else { 4 };
        let (mut first, mut first_mask, mut last, mut last_mask) = (0u64, 0u64, 0u64, 0u64);
        let mut i = 0;
        while i < w {
            let (a, b) = (t[i], t[t.len() - w + i]);
            assert!(!a.is_ascii_uppercase() && !b.is_ascii_uppercase());
            first |= (a as u64) << (8 * i);
            last |= (b as u64) << (8 * i);
            if a.is_ascii_lowercase() {
                first_mask |= 0x20 << (8 * i);
            }
            if b.is_ascii_lowercase() {
                last_mask |= 0x20 << (8 * i);
            }
            i += 1;
        }
        Token {
            len: t.len(),
            first,
            first_mask,
            last,
            last_mask,
        }
    }

    #[inline]
    fn eq(&self, s: &[u8]) -> bool {
        if s.len() != self.len {
            return false;
        }
        let (a, b) = if self.len >= 8 {
            (
                u64::from_le_bytes(s[..8].try_into().unwrap()),
                u64::from_le_bytes(s[s.len() - 8..].try_into().unwrap()),
            )
        } else {
            (
                u64::from(u32::from_le_bytes(s[..4].try_into().unwrap())),
                u64::from(u32::from_le_bytes(s[s.len() - 4..].try_into().unwrap())),
            )
        };
        (a | self.first_mask) == self.first && (b | self.last_mask) == self.last
    }
}

const CONTENT_LENGTH: Token = Token::new(b"content-length");
const CONNECTION: Token = Token::new(b"connection");
const CLOSE: Token = Token::new(b"close");
const KEEP_ALIVE: Token = Token::new(b"keep-alive");

#[inline]
fn trim(s: &[u8]) -> &[u8] {
    let blank = |c: u8| c == b' ' || c == b'\t';
    let (mut a, mut b) = (0, s.len());
    while a < b && blank(s[a]) {
        a += 1;
    }
    while a < b && blank(s[b - 1]) {
        b -= 1;
    }
    &s[a..b]
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
    RequestSpec {
        host,
        path,
        close,
        min_len,
        ..RequestSpec::default()
    }
    .build()
}

/// A request as the user writes it, serialised once by [`RequestSpec::build`].
#[derive(Debug, Clone, Copy)]
pub struct RequestSpec<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    /// Headers as (name, value), in order. One named Host, User-Agent or
    /// Connection (any case) replaces ours; Content-Length is ours to send.
    pub headers: &'a [(String, String)],
    /// A body, sent with its Content-Length.
    pub body: Option<&'a [u8]>,
    /// `Connection: close` instead of keep-alive (unless a header says).
    pub close: bool,
    /// Pad the request with an `X-Pad` header to at least this many bytes.
    pub min_len: usize,
}

impl Default for RequestSpec<'_> {
    fn default() -> Self {
        RequestSpec {
            method: "GET",
            host: "",
            path: "/",
            headers: &[],
            body: None,
            close: false,
            min_len: 0,
        }
    }
}

impl RequestSpec<'_> {
    /// The request's bytes: start line, Host, User-Agent, the given
    /// headers, Connection, Content-Length, padding, blank line, body.
    pub fn build(&self) -> Vec<u8> {
        let given = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !given("host") {
            head += &format!("Host: {}\r\n", self.host);
        }
        if !given("user-agent") {
            head += "User-Agent: sluice\r\n";
        }
        for (name, value) in self.headers {
            head += &format!("{name}: {value}\r\n");
        }
        if !given("connection") {
            head += if self.close {
                "Connection: close\r\n"
            } else {
                "Connection: keep-alive\r\n"
            };
        }
        let body = self.body.unwrap_or_default();
        if let Some(b) = self.body {
            head += &format!("Content-Length: {}\r\n", b.len());
        }
        let base = head.len() + 2 + body.len();
        let mut v = head.into_bytes();
        // "X-Pad: " + pad + CRLF is at least 9 bytes.
        if self.min_len >= base + 9 {
            v.extend_from_slice(b"X-Pad: ");
            v.extend(std::iter::repeat_n(b'x', self.min_len - base - 9));
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(body);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `LazyFramer` frames as a `Framer` does, over any split of the
    /// bytes, with or without the memo, and holds a framer only while a
    /// read has ended inside a message.
    #[test]
    fn a_lazy_framer_frames_as_a_framer_and_holds_memory_only_inside_a_message() {
        let streams: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        ];
        let mut memo = HeadMemo::default();
        for data in streams {
            for cut in 0..=data.len() {
                let (a, b) = data.split_at(cut);
                let mut want = Vec::new();
                let mut f = Framer::new();
                f.feed(a, |m| want.push(m)).unwrap();
                f.feed(b, |m| want.push(m)).unwrap();
                let mut got = Vec::new();
                let mut lazy = LazyFramer::new();
                lazy.feed_memo(a, &mut memo, |m| got.push(m)).unwrap();
                assert_eq!(lazy.memory() > 0, f_in_message(a), "{cut}");
                lazy.feed_memo(b, &mut memo, |m| got.push(m)).unwrap();
                assert_eq!(
                    got,
                    want,
                    "cut at {cut} of {:?}",
                    String::from_utf8_lossy(data)
                );
                assert_eq!(lazy.memory(), 0, "at a boundary: nothing held");
                assert!(!lazy.in_message());
            }
        }
        // A response to HEAD: expected before its bytes (held), framed
        // without its body, then given back.
        let mut lazy = LazyFramer::new();
        lazy.expect_no_body(true);
        assert!(lazy.memory() > 0);
        let mut got = Vec::new();
        lazy.feed_memo(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            &mut memo,
            |m| got.push(m),
        )
        .unwrap();
        assert_eq!((got.len(), got[0].body_len, lazy.memory()), (1, 0, 0));
        // A body to the close: held until the end.
        lazy.feed_memo(b"HTTP/1.0 200 OK\r\n\r\nall", &mut memo, |_| {})
            .unwrap();
        assert!(lazy.memory() > 0);
        assert_eq!(lazy.eof().unwrap().map(|m| m.body_len), Some(3));
        assert_eq!(lazy.memory(), 0);
        assert_eq!(LazyFramer::new().eof(), Ok(None));
    }

    /// Whether a framer fed `a` from the start is inside a message.
    fn f_in_message(a: &[u8]) -> bool {
        let mut f = Framer::new();
        f.feed(a, |_| {}).unwrap();
        !f.at_rest()
    }

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

    /// What the framer makes of `bytes` fed in `chunks` (lengths, the rest
    /// last): its messages, whether it failed, and whether it is mid-message.
    fn framed<const FAST: bool>(
        bytes: &[u8],
        chunks: impl Iterator<Item = usize>,
    ) -> (Vec<Message>, bool, bool) {
        let mut f = Framer::new();
        let mut out = Vec::new();
        let mut rest = bytes;
        let mut chunks = chunks.fuse();
        while !rest.is_empty() {
            let n = chunks.next().unwrap_or(rest.len()).min(rest.len());
            if f.feed_with::<FAST>(&rest[..n], None, |m| out.push(m))
                .is_err()
            {
                return (out, true, f.in_message());
            }
            rest = &rest[n..];
        }
        (out, false, f.in_message())
    }

    /// Both paths, fed the same chunks (lengths, the rest last), agree.
    fn agree(bytes: &[u8], chunks: &[usize]) {
        assert_eq!(
            framed::<true>(bytes, chunks.iter().copied()),
            framed::<false>(bytes, chunks.iter().copied()),
            "{:?} in {chunks:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    #[test]
    fn fast_path_agrees_with_the_general_path() {
        let cases: &[&[u8]] = &[
            b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: sluice\r\nConnection: keep-alive\r\n\r\n",
            b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
            b"GET / HTTP/1.0\r\nconnection:KEEP-ALIVE\r\n\r\n",
            b"GET / HTTP/1.1\r\nCONNECTION:  Close \t\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close, foo\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: close\r\nConnection: keep-alive\r\n\r\n",
            b"GET / HTTP/1.1\nHost: h\n\n",
            b"GET / HTTP/1.1\r\nHost: h\n\r\n",
            b"\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET http://a:1/ HTTP/1.1\r\nHost: h:80\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\ncontent-LENGTH:7\r\n\r\nhel",
            b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 0\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1234567890123456789\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent\rLength: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Lengthx: 5\r\n\r\nhello",
            b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello",
            b"GET / HTTP/1.1\r\nConnection: c\x0cose\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnection: keep\ralive\r\n\r\n",
            b"GET / HTTP/1.1\r\nConnectio: close\r\n\r\n",
            b"GET / HTTP/1.1\r\nC: close\r\nc:\r\n:\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\r\n\r\n",
            b"GET / HTTP/1.1\r\r\nHost: h\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nServer: sluice\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nxyz",
            b"HTTP/1.0 204 No Content\r\n\r\n",
            b"HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
            b"HTTP/1.1 20\r\n\r\n",
            b"HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\n",
            b"GET / HTTP/1.1",
            b"\n",
        ];
        for case in cases {
            agree(case, &[]);
            // And split anywhere, or a byte at a time.
            for cut in 0..case.len() {
                agree(case, &[cut]);
            }
            agree(case, &vec![1; case.len()]);
        }
    }

    #[test]
    fn fast_path_limits_agree() {
        // 100 lines are fine, 101 are not; long heads and lines.
        for n in [98, 99, 100, 101] {
            let mut h = b"GET / HTTP/1.1\r\n".to_vec();
            for k in 0..n {
                h.extend_from_slice(format!("X-{k}: v\r\n").as_bytes());
            }
            h.extend_from_slice(b"\r\n");
            agree(&h, &[]);
        }
        for len in [4000, 4100, 8180, 8200, 9000] {
            let h = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "v".repeat(len));
            agree(h.as_bytes(), &[]);
            let h = format!("GET /{} HTTP/1.0\r\n\r\n", "p".repeat(len));
            agree(h.as_bytes(), &[]);
        }
    }

    #[test]
    fn tokens_compare_as_eq_ignore_ascii_case() {
        for t in [
            &b"content-length"[..],
            b"connection",
            b"close",
            b"keep-alive",
        ] {
            let tok = Token::new(t);
            for i in 0..t.len() {
                for c in 0..=255u8 {
                    let mut s = t.to_vec();
                    s[i] = c;
                    assert_eq!(tok.eq(&s), s.eq_ignore_ascii_case(t), "{s:?}");
                }
            }
            assert!(tok.eq(&t.to_ascii_uppercase()));
            assert!(!tok.eq(&t[1..]));
        }
    }

    #[test]
    fn masks16_marks_line_ends_and_colons() {
        let data: Vec<u8> = b"GET / HTTP/1.1\r\nHost: a:1\r\n\r\n:\n\x0a\x3a\xba\x8a".to_vec();
        for len in 0..=data.len() {
            for at in 0..len {
                let want = (0..16)
                    .filter(|i| at + i < len)
                    .fold((0u32, 0u32), |(n, c), i| {
                        let b = data[at + i];
                        (
                            n | (u32::from(b == b'\n') << i),
                            c | (u32::from(b == b':') << i),
                        )
                    });
                assert_eq!(masks16(&data[..len], at), want, "{len} {at}");
                let (lo, hi) = words16(&data[..len], at);
                assert_eq!(masks16_swar(lo, hi), want, "{len} {at}");
            }
        }
    }

    #[test]
    fn eq_bytes_is_exact() {
        for c in [b'\n', b':', 0, 0x80, 0xff] {
            for w in [0u64, u64::MAX, 0x0a3a_0a00_8081_0a3a, 0x0100_ff0a_0b09_3a3b] {
                let want = (0..8).fold(0u64, |m, i| {
                    m | (u64::from((w >> (8 * i)) as u8 == c) << (8 * i + 7))
                });
                assert_eq!(eq_bytes(w, c), want, "{w:x} {c}");
            }
        }
    }

    /// Heads fed one after another to fresh framers (as connections of one
    /// shard), each in the given chunks, through one memo or none.
    fn framed_in_turn(
        heads: &[Vec<u8>],
        cut: usize,
        memo: Option<&mut HeadMemo>,
    ) -> Vec<(Vec<Message>, bool)> {
        let mut memo = memo;
        heads
            .iter()
            .map(|h| {
                let mut f = Framer::new();
                let mut out = Vec::new();
                let cut = cut.min(h.len());
                let mut failed = false;
                for part in [&h[..cut], &h[cut..]] {
                    if part.is_empty() || failed {
                        continue;
                    }
                    failed = f
                        .feed_with::<true>(part, memo.as_deref_mut(), |m| out.push(m))
                        .is_err();
                }
                (out, failed)
            })
            .collect()
    }

    #[test]
    fn head_memo_frames_as_without_it() {
        let resp = response(3, false);
        let close = response(3, true);
        let heads: Vec<Vec<u8>> = vec![
            resp.clone(),
            resp.clone(),
            close.clone(),
            resp.clone(),
            // The remembered head as a prefix of a longer head: no match.
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX: y\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 500 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n".to_vec(),
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n".to_vec(),
            resp.clone(),
            [resp.clone(), resp.clone()].concat(),
        ];
        for cut in [0, 5, 40, 1000] {
            let mut memo = HeadMemo::default();
            assert_eq!(
                framed_in_turn(&heads, cut, Some(&mut memo)),
                framed_in_turn(&heads, cut, None),
                "cut {cut}"
            );
        }
        // And a hit is a hit: the memo holds the last head the fast path took.
        let mut memo = HeadMemo::default();
        framed_in_turn(&heads[..1], 1000, Some(&mut memo));
        assert_eq!(memo.get(&resp).map(|(n, _)| n), Some(resp.len() - 3));
        assert_eq!(memo.get(&resp[..resp.len() - 4]), None);
    }

    /// `bytes` fed in pieces cut at `cuts` (offsets, ascending), to a framer
    /// told the response answers HEAD (`no_body`), by the fast path or the
    /// general one: the messages, then the error if one stopped it.
    fn frame_cut<const FAST: bool>(
        bytes: &[u8],
        cuts: &[usize],
        no_body: bool,
    ) -> (Vec<Message>, Option<FrameError>) {
        let mut f = Framer::new();
        f.expect_no_body(no_body);
        let mut out = Vec::new();
        let mut from = 0;
        for &to in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let to = to.clamp(from, bytes.len());
            if let Err(e) = f.feed_with::<FAST>(&bytes[from..to], None, |m| out.push(m)) {
                return (out, Some(e));
            }
            from = to;
        }
        (out, None)
    }

    /// `bytes` split in two at every offset, and a byte at a time, by both
    /// paths: always what it is whole.
    fn frame_everywhere(bytes: &[u8], no_body: bool) -> (Vec<Message>, Option<FrameError>) {
        let whole = frame_cut::<true>(bytes, &[], no_body);
        let text = String::from_utf8_lossy(bytes);
        for cut in 0..=bytes.len() {
            assert_eq!(
                frame_cut::<true>(bytes, &[cut], no_body),
                whole,
                "{text:?} cut at {cut}"
            );
            assert_eq!(
                frame_cut::<false>(bytes, &[cut], no_body),
                whole,
                "{text:?} cut at {cut}"
            );
        }
        let bytewise: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(
            frame_cut::<true>(bytes, &bytewise, no_body),
            whole,
            "{text:?} bytewise"
        );
        whole
    }

    fn msg(status: u16, close: bool, body_len: u64) -> Message {
        Message {
            status,
            close,
            body_len,
        }
    }

    /// The framer lives in every connection's state, which is moved when
    /// a connection opens: kept as small as it was before chunked, interim
    /// and HEAD responses were read (bigger, the moves became memcpy calls).
    #[test]
    fn framer_stays_small() {
        assert_eq!(std::mem::size_of::<Head>(), 16);
        assert!(std::mem::size_of::<Framer>() <= 72);
    }

    #[test]
    fn chunked_split_at_every_byte() {
        // nginx's own (gzip): extensions, upper- and lower-case hex, a
        // trailer, then a keep-alive Content-Length response behind it.
        let r = b"HTTP/1.1 200 OK\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n\
                  Connection: keep-alive\r\n\r\n\
                  5\r\nhello\r\n1A;name=value;q=\"a b\"\r\nabcdefghijklmnopqrstuvwxyz\r\n\
                  b \t;x\r\nhello world\r\n0\r\nX-Trailer: yes\r\nEtag: \"1\"\r\n\r\n\
                  HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nnop";
        assert_eq!(
            frame_everywhere(r, false),
            (vec![msg(200, false, 5 + 26 + 11), msg(404, false, 3)], None)
        );
        // Bare LFs, an empty body, no trailers.
        let r = b"HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n0\n\n";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, false, 0)], None));
        // The last coding counts; a length beside chunked is ignored, and
        // the connection is not trusted after it.
        let r =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, CHUNKED\r\nContent-Length: 99\r\n\r\n\
                  2\r\nok\r\n0\r\n\r\n";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, true, 2)], None));
        // A chunked request to the server, and one behind it.
        let r = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
                  GET / HTTP/1.1\r\n\r\n";
        assert_eq!(
            frame_everywhere(r, false),
            (vec![msg(0, false, 3), msg(0, false, 0)], None)
        );
    }

    #[test]
    fn interim_responses_are_skipped() {
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
                  HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        assert_eq!(frame_everywhere(r, false), (vec![msg(201, false, 2)], None));
        // Interim, then the final response to a HEAD request: no body.
        let r = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(frame_everywhere(r, true), (vec![msg(200, false, 0)], None));
        // 101 leaves HTTP: the connection ends with it.
        let r = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n";
        assert_eq!(frame_everywhere(r, false), (vec![msg(101, true, 0)], None));
    }

    #[test]
    fn responses_without_a_body() {
        // HEAD: the head's length or coding describes a body not sent.
        for r in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n\r\n",
        ] {
            assert_eq!(frame_everywhere(r, true), (vec![msg(200, false, 0)], None));
        }
        // 204 and 304, whatever they say.
        let r = b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(
            frame_everywhere(r, false),
            (vec![msg(304, false, 0), msg(204, false, 0)], None)
        );
        // A finished message forgets HEAD: the next response has its body.
        let mut f = Framer::new();
        f.expect_no_body(true);
        let mut out = Vec::new();
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        f.feed(two, |m| out.push(m)).unwrap();
        assert_eq!(out, vec![msg(200, false, 0), msg(200, false, 2)]);
    }

    #[test]
    fn connection_close_and_bodies_to_the_close() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, true, 2)], None));
        let r = b"HTTP/1.1 200 OK\r\nConnection: keep-alive, Upgrade\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, false, 0)], None));
        let r = b"HTTP/1.1 200 OK\r\nConnection: Upgrade,  close\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, true, 0)], None));
        // No length: the body runs to the close, which `eof` reports.
        let r = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nsome body";
        for cut in 0..=r.len() {
            let mut f = Framer::new();
            let mut out = Vec::new();
            f.feed(&r[..cut], |m| out.push(m)).unwrap();
            f.feed(&r[cut..], |m| out.push(m)).unwrap();
            assert!(out.is_empty());
            assert_eq!(f.eof(), Ok(Some(msg(200, true, 9))), "cut at {cut}");
            assert_eq!(f.eof(), Ok(None), "then nothing");
        }
        // A close inside any other message cuts it short.
        for part in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nContent-",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2",
        ] {
            let mut f = Framer::new();
            f.feed(part, |_| panic!("not complete")).unwrap();
            assert_eq!(f.eof(), Err(FrameError::Truncated), "{part:?}");
        }
        let mut f = Framer::new();
        assert_eq!(f.eof(), Ok(None), "nothing at all");
        f.feed(b"\r\n", |_| {}).unwrap();
        assert_eq!(f.eof(), Ok(None), "a stray CRLF");
    }

    #[test]
    fn bad_framing_is_an_error() {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            "zz\r\n",                // not hex
            "\r\n",                  // no size
            ";ext\r\n",              // extension without a size
            "1 2\r\n",               // whitespace inside the size
            "5\rx\n",                // a CR not before the LF
            "10000000000000000\r\n", // more than 64 bits
            "5\r\nhelloX\r\n",       // no CRLF after the data
            "5\r\nhello\r\r\n",      // two CRs
            "-1\r\n",
        ] {
            let bytes = format!("{head}{body}0\r\n\r\n");
            let (m, e) = frame_everywhere(bytes.as_bytes(), false);
            assert!(
                m.is_empty() && e == Some(FrameError::BadHead),
                "{body:?}: {m:?} {e:?}"
            );
        }
        for bad in [
            // Two different lengths.
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello"[..],
            // A request with a body in a coding we cannot delimit.
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nxyz",
            b"HTTP/1.1 099 Low\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
        ] {
            let (m, e) = frame_everywhere(bad, false);
            assert!(m.is_empty() && e == Some(FrameError::BadHead), "{bad:?}");
        }
        // A trailer section without end is bounded.
        let mut long = format!("{head}0\r\n").into_bytes();
        long.extend(std::iter::repeat_n(b'x', 9000));
        assert_eq!(
            frame_cut::<true>(&long, &[], false).1,
            Some(FrameError::BadHead)
        );
        let mut many = format!("{head}0\r\n").into_bytes();
        for _ in 0..300 {
            many.extend_from_slice(b"T: v\r\n");
        }
        assert_eq!(
            frame_cut::<true>(&many, &[], false).1,
            Some(FrameError::BadHead)
        );
        // A response with a same length twice is fine.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, false, 2)], None));
    }

    /// Header names longer than the kept prefix, split across reads: read
    /// past, as whole ones are (the colon is beyond the prefix).
    #[test]
    fn long_header_names_split_anywhere() {
        let r = b"HTTP/1.1 200 OK\r\nAccess-Control-Allow-Credentials-And-More: true\r\n\
                  Content-Length: 2\r\n\r\nok";
        assert_eq!(frame_everywhere(r, false), (vec![msg(200, false, 2)], None));
        // A length we read must be all in the kept prefix.
        let r = b"HTTP/1.1 200 OK\r\nContent-Length:                    000000000002\r\n\r\nok";
        assert_eq!(
            frame_cut::<true>(r, &[], false),
            (vec![msg(200, false, 2)], None)
        );
        let (_, e) = frame_cut::<true>(r, &[20], false);
        assert_eq!(e, Some(FrameError::BadHead), "cut short, not misread");
    }

    proptest::proptest! {
        /// Chunked bodies of random chunks, cut anywhere: the body's length
        /// is the chunks' sum; both paths agree.
        #[test]
        fn random_chunked_bodies(
            sizes in proptest::collection::vec(1usize..300, 0..8),
            cuts in proptest::collection::vec(0usize..3000, 0..6),
            ext in proptest::bool::ANY,
        ) {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for (k, n) in sizes.iter().enumerate() {
                let e = if ext { ";k=v" } else { "" };
                r.extend_from_slice(format!("{n:x}{e}\r\n").as_bytes());
                r.extend(std::iter::repeat_n(b'a' + k as u8, *n));
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\nT: 1\r\n\r\n");
            let mut cuts = cuts;
            cuts.sort_unstable();
            let want = (vec![msg(200, false, sizes.iter().sum::<usize>() as u64)], None);
            proptest::prop_assert_eq!(&frame_cut::<true>(&r, &cuts, false), &want);
            proptest::prop_assert_eq!(&frame_cut::<false>(&r, &cuts, false), &want);
        }
    }

    proptest::proptest! {
        /// Random heads in turn through one memo frame as without it.
        #[test]
        fn head_memo_agrees_on_random_heads(
            picks in proptest::collection::vec((0usize..6, 0usize..3), 1..30),
            cut in 0usize..200,
        ) {
            let bases: [&[u8]; 6] = [
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
                b"GET / HTTP/1.0\r\nHost: h\r\n\r\n",
                b"GET / HTTP/1.1\r\nHost: h\r\nno colon\r\n\r\n",
            ];
            // Each pick: a base head, whole, or cut short, or with a byte changed.
            let heads: Vec<Vec<u8>> = picks.iter().map(|&(b, how)| {
                let mut h = bases[b].to_vec();
                match how {
                    1 => h.truncate(h.len() / 2),
                    2 => { let i = cut % h.len(); h[i] ^= 0x20; }
                    _ => {}
                }
                h
            }).collect();
            let mut memo = HeadMemo::default();
            proptest::prop_assert_eq!(
                framed_in_turn(&heads, cut, Some(&mut memo)),
                framed_in_turn(&heads, cut, None)
            );
        }
    }

    proptest::proptest! {
        /// Random heads from the pieces that matter, split anywhere: the same
        /// as a byte at a time.
        #[test]
        fn random_heads_frame_as_the_general_path(
            parts in proptest::collection::vec(0usize..28, 0..40),
            cut in 0usize..400,
        ) {
            const PIECES: [&[u8]; 28] = [
                b"GET / HTTP/1.1", b"GET / HTTP/1.0", b"HTTP/1.1 200 OK", b"HTTP/1.0 500 x",
                b"\r\n", b"\n", b"\r", b"Host: h", b"Connection: close", b"connection:Keep-Alive",
                b"Content-Length: 3", b"content-length: 0", b"Content-Length: z", b"CONTENT-LENGTH:  12 ",
                b"no colon", b":", b"C", b"c: ", b"xyz", b"HTTP/1.1 2", b" ", b"\t", b"0", b"\r\n\r\n",
                b"Transfer-Encoding: chunked", b"HTTP/1.1 100 Continue", b"HTTP/1.1 204 x", b"3;e=1",
            ];
            let bytes: Vec<u8> = parts.iter().flat_map(|&p| PIECES[p].iter().copied()).collect();
            for chunks in [&[][..], &[cut], &[cut / 3, cut / 2, cut]] {
                let fast = framed::<true>(&bytes, chunks.iter().copied());
                let general = framed::<false>(&bytes, chunks.iter().copied());
                proptest::prop_assert_eq!(fast, general, "{:?} in {:?}", String::from_utf8_lossy(&bytes), chunks);
            }
        }
    }
}
