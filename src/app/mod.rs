//! The applications a shard runs on its connections: the server's (echo,
//! discard, HTTP with a fixed response, close, drain-reply) and the load
//! generator's HTTP client. They react to engine events; the shard owns the
//! connections and calls them.

pub mod http;
pub mod schedule;
pub mod window;

use crate::flags::Flags8;
use crate::stats::{Latency, ShardStats, StatusClass, record};
use crate::tcp::{Connection, Event, QueuedSum, TcpConfig};

/// Why [`Socket::send`] took nothing and never will on this connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The connection no longer sends: the application closed it (FIN
    /// queued), it was reset or aborted, or it has ended.
    #[error("connection closed for sending")]
    Closed,
}

/// What an application does with its connection: our engine's
/// ([`EngineSocket`]) or a Linux socket (`--kernel`, [`crate::kernel`]).
pub trait Socket {
    /// Queues bytes to send; returns how many fit: `Ok(0)` when the send
    /// buffer is full (`Event::Writable` follows once it drains), `Err` when
    /// the connection cannot send any more.
    fn send(&mut self, data: &[u8]) -> Result<usize, SendError>;
    /// `send` of the whole of `p`, whose checksum sum was taken once
    /// (`Payload`): the engine need not sum its bytes again.
    #[inline]
    fn send_payload(&mut self, p: &Payload) -> Result<usize, SendError> {
        self.send(p)
    }
    /// Reads received bytes; 0 when there are none (now).
    fn recv(&mut self, out: &mut [u8]) -> usize;
    /// Reads received bytes where the socket holds them if it can (the
    /// engine's receive buffer), else through `scratch`: `f` is given some
    /// of them (every call, more), which are then consumed; `None`, and no
    /// call, when there are none (now).
    #[inline]
    fn recv_with<R>(&mut self, scratch: &mut [u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        let n = self.recv(scratch);
        (n > 0).then(|| f(&scratch[..n]))
    }
    /// False when a read would certainly find nothing (true: it may find
    /// something), for a caller that can skip its work then.
    #[inline]
    fn may_recv(&self) -> bool {
        true
    }
    /// Bytes `send` takes now.
    fn send_capacity(&self) -> usize;
    /// Asks for `Event::Writable` once the send buffer has room again.
    fn want_writable(&mut self);
    /// The peer's FIN has arrived.
    fn peer_closed(&self) -> bool;
    /// No more sending (FIN after what is queued); reads end.
    fn close(&mut self);
    /// Reset.
    fn abort(&mut self);
    /// A hint: nothing will be sent for `idle` (think time), so an ACK owed
    /// need not wait for data to ride on (`Connection::sending_nothing_for`).
    fn sending_nothing_for(&mut self, _idle: Duration) {}
}

/// The engine's connection as an application sees it.
pub struct EngineSocket<'a> {
    pub conn: &'a mut Connection,
    pub cfg: &'a TcpConfig,
    pub now: Instant,
    /// What `send_payload` last queued whole, with its sum: for the
    /// transmit that follows (`Connection::poll_transmit_summed`).
    pub queued: &'a mut QueuedSum,
}

impl Socket for EngineSocket<'_> {
    #[inline]
    fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        // The engine's only refusal: not open for sending.
        self.conn
            .send(self.cfg, data)
            .map_err(|crate::tcp::CommandError::NotWritable| SendError::Closed)
    }
    #[inline]
    fn send_payload(&mut self, p: &Payload) -> Result<usize, SendError> {
        self.conn
            .send_summed(self.cfg, p, p.sum, self.queued)
            .map_err(|crate::tcp::CommandError::NotWritable| SendError::Closed)
    }
    #[inline]
    fn recv(&mut self, out: &mut [u8]) -> usize {
        // The applications read until nothing is left: that last read
        // costs only this look (an empty read changes nothing).
        if self.conn.recv_available() == 0 {
            return 0;
        }
        self.conn.recv(self.cfg, out)
    }
    #[inline(always)]
    fn recv_with<R>(&mut self, scratch: &mut [u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        self.conn.recv_in_place(self.cfg, scratch, f)
    }
    #[inline(always)]
    fn may_recv(&self) -> bool {
        self.conn.recv_available() > 0
    }
    fn send_capacity(&self) -> usize {
        self.conn.send_capacity(self.cfg)
    }
    fn want_writable(&mut self) {
        self.conn.want_writable();
    }
    fn peer_closed(&self) -> bool {
        self.conn.peer_closed()
    }
    fn close(&mut self) {
        self.conn.close(self.now, self.cfg);
    }
    fn abort(&mut self) {
        self.conn.abort();
    }
    #[inline]
    fn sending_nothing_for(&mut self, idle: Duration) {
        self.conn.sending_nothing_for(self.cfg, idle);
    }
}
use crate::time::Instant;
use http::{HeadMemos, LazyFramer};

/// Bytes an application sends again and again, serialised once (a
/// response, a request), with the part of a TCP checksum they give summed
/// once too (`checksum::partial_sum`): sent whole with
/// `Socket::send_payload`, the segment that carries them needs no pass
/// over them for its checksum. Read as `[u8]`.
#[derive(Debug, Clone)]
pub struct Payload {
    bytes: Arc<[u8]>,
    sum: u16,
}

impl Payload {
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Payload {
        let bytes = bytes.into();
        Payload {
            sum: crate::wire::checksum::partial_sum(&bytes),
            bytes,
        }
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];
    #[inline(always)]
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// What is left of `p` from byte `from` on, queued on `c`: the whole with
/// its sum (`send_payload`), or the rest of one the send buffer cut short.
#[inline(always)]
fn send_from(c: &mut impl Socket, p: &Payload, from: usize) -> Result<usize, SendError> {
    if from == 0 {
        c.send_payload(p)
    } else {
        c.send(&p[from..])
    }
}
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

/// What a listening port does with its connections.
#[derive(Debug, Clone)]
pub enum ServerApp {
    /// Sends back what it receives.
    Echo,
    /// Reads and drops everything.
    Discard,
    /// HTTP/1.1: a fixed response to every request; closes after
    /// `close_after` requests (0: never) or when the request says `Connection: close`.
    Http {
        response: Payload,
        response_close: Payload,
        close_after: u32,
    },
    /// Closes right after the handshake (the server's own close and TIME_WAIT).
    Close,
    /// Reads until the peer's FIN, then sends `reply` and closes (half-close).
    DrainReply { reply: Arc<[u8]> },
}

impl ServerApp {
    pub fn http(body: usize, close_after: u32) -> ServerApp {
        ServerApp::Http {
            response: Payload::new(http::response(body, false)),
            response_close: Payload::new(http::response(body, true)),
            close_after,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            ServerApp::Echo => "echo",
            ServerApp::Discard => "discard",
            ServerApp::Http { .. } => "http",
            ServerApp::Close => "close",
            ServerApp::DrainReply { .. } => "drain-reply",
        }
    }
}

/// What the application needs besides the connection.
pub struct AppCx<'a> {
    pub now: Instant,
    pub stats: &'a mut ShardStats,
    pub latency: &'a mut Latency,
    pub scratch: &'a mut [u8],
    /// The shard's last request and response heads (see `http::HeadMemo`).
    pub heads: &'a mut HeadMemos,
    /// The load generator stops here: connections finish their request and close.
    pub stop_at: Instant,
    /// Latencies are recorded for what starts from here on (after warm-up).
    pub record_from: Instant,
}

/// A server connection's application state: what it needs between
/// requests. Its application is its listener's (`listener`, an index the
/// owner resolves: the shard's or the kernel loop's list of listeners), and
/// its framer is held only inside a request (`LazyFramer`).
#[derive(Debug, Clone)]
pub struct ServerConn {
    framer: LazyFramer,
    /// Responses owed (requests framed, responses not yet fully queued).
    owed: u32,
    /// Bytes of the current response already queued.
    sent: u32,
    served: u32,
    /// Which listener accepted it (its application).
    listener: u16,
    /// Finished: closing, or closed.
    done: bool,
    /// `CLOSE_AFTER_OWED`, `PEER_FIN` below (rarely set): with `done`, two
    /// bytes, so the record is 24 B and `AppConn` fits in the client's 32.
    /// (Whether the last read drained the socket is `pump`'s answer, not
    /// kept.)
    flags: u8,
}

// `ServerConn::flags`.
/// The last owed response is the final one (`Connection: close`).
const CLOSE_AFTER_OWED: u8 = 1;
/// The peer has half-closed: close once everything it sent is answered.
const PEER_FIN: u8 = 2;

impl crate::flags::Flags8 for ServerConn {
    #[inline(always)]
    fn bits(&mut self) -> &mut u8 {
        &mut self.flags
    }
    #[inline(always)]
    fn bits_ref(&self) -> u8 {
        self.flags
    }
}

impl ServerConn {
    /// A connection accepted by listener `listener` (an index into its
    /// owner's listeners, whose applications `on_event` is given).
    pub fn new(listener: u16) -> ServerConn {
        ServerConn {
            framer: LazyFramer::new(),
            owed: 0,
            sent: 0,
            served: 0,
            listener,
            done: false,
            flags: 0,
        }
    }

    /// The listener that accepted it.
    #[inline]
    pub fn listener(&self) -> usize {
        usize::from(self.listener)
    }

    /// Bytes its application state holds outside the connection (a framer
    /// inside a request).
    pub fn memory(&self) -> usize {
        self.framer.memory()
    }

    /// The engine's event `ev`; `app` is its listener's application.
    #[inline]
    pub fn on_event(
        &mut self,
        app: &ServerApp,
        cx: &mut AppCx<'_>,
        c: &mut impl Socket,
        ev: Event,
    ) {
        match ev {
            Event::Connected => {
                if matches!(app, ServerApp::Close) {
                    self.done = true;
                    c.close();
                }
            }
            Event::Readable | Event::Writable => {
                let drained = self.pump(app, cx, c);
                self.finish_if_answered(c, drained);
            }
            Event::PeerClosed => {
                self.set(PEER_FIN, true);
                let drained = self.pump(app, cx, c);
                if let ServerApp::DrainReply { reply } = app {
                    if !self.done && c.send(reply).is_err() {
                        self.done = true; // nobody left to reply to
                    }
                }
                self.finish_if_answered(c, drained);
            }
            Event::Closed(_) => self.done = true,
        }
    }

    /// After the peer's FIN: close once every byte it sent has been read
    /// (`drained`: the last read found nothing more) and answered (an echo
    /// may still owe most of a transfer when the FIN comes).
    fn finish_if_answered(&mut self, c: &mut impl Socket, drained: bool) {
        if self.has(PEER_FIN) && drained && !self.done && self.owed == 0 {
            self.done = true;
            c.close();
        }
    }

    /// Reads and answers what it can; true if the last read found nothing
    /// more to read.
    fn pump(&mut self, app: &ServerApp, cx: &mut AppCx<'_>, c: &mut impl Socket) -> bool {
        if self.done {
            // Closing: read and drop whatever still arrives.
            while c.recv_with(cx.scratch, |_| ()).is_some() {}
            return false;
        }
        loop {
            if !self.flush_owed(app, cx, c) {
                return false; // the send buffer is full: read more once it drains
            }
            if self.done {
                return false;
            }
            match app {
                ServerApp::Echo => {
                    let room = c.send_capacity().min(cx.scratch.len());
                    if room == 0 {
                        c.want_writable(); // read more once the echo has room
                        return false;
                    }
                    let n = c.recv(&mut cx.scratch[..room]);
                    if n == 0 {
                        return true;
                    }
                    // `room` fits what was read, so only a closed connection
                    // takes less: stop echoing, drain what still arrives.
                    let sent = c.send(&cx.scratch[..n]);
                    if sent.is_err() {
                        self.done = true;
                        return false;
                    }
                }
                ServerApp::Http { close_after, .. } => {
                    let close_after = *close_after;
                    // Framed where the socket holds the bytes.
                    let (framer, memo) = (&mut self.framer, &mut cx.heads.requests);
                    let framed = c.recv_with(cx.scratch, |data| {
                        let (mut owed, mut close) = (0u32, false);
                        let ok = framer
                            .feed_memo(data, memo, |m| {
                                if !close {
                                    owed += 1;
                                    close = m.close;
                                }
                            })
                            .is_ok();
                        (ok, owed, close)
                    });
                    let Some((ok, owed, close)) = framed else {
                        return true;
                    };
                    if !ok {
                        cx.stats.app_errors += 1;
                        self.done = true;
                        c.abort();
                        return false;
                    }
                    self.owed += owed;
                    let limit = close_after > 0 && self.served + self.owed >= close_after;
                    if close || limit {
                        self.set(CLOSE_AFTER_OWED, true);
                        if limit {
                            self.owed = close_after - self.served;
                        }
                    }
                }
                // Read and dropped.
                _ => {
                    if c.recv_with(cx.scratch, |_| ()).is_none() {
                        return true;
                    }
                }
            }
        }
    }

    /// Queues owed responses; false if the send buffer filled first.
    fn flush_owed(&mut self, app: &ServerApp, cx: &mut AppCx<'_>, c: &mut impl Socket) -> bool {
        let ServerApp::Http {
            response,
            response_close,
            ..
        } = app
        else {
            return true;
        };
        while self.owed > 0 {
            let last = self.owed == 1 && self.has(CLOSE_AFTER_OWED);
            let r = if last { response_close } else { response };
            let from = self.sent as usize;
            let Ok(n) = send_from(c, r, from) else {
                // Closed under us (reset, aborted): nothing more is owed.
                self.owed = 0;
                self.sent = 0;
                self.done = true;
                return true;
            };
            self.sent += n as u32;
            if (self.sent as usize) < r.len() {
                return false; // the send buffer is full: Writable resumes
            }
            self.sent = 0;
            self.owed -= 1;
            self.served += 1;
            cx.stats.responses += 1;
            if last {
                self.done = true;
                c.close();
                return true;
            }
        }
        true
    }
}

/// The load generator's settings (per shard).
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub target: SocketAddrV4,
    /// Source addresses: `src_count` consecutive from `src_first`.
    pub src_first: Ipv4Addr,
    pub src_count: u32,
    /// Source ports, inclusive.
    pub ports: (u16, u16),
    /// Concurrent connections (closed loop), or the most in flight (open loop).
    pub connections: u32,
    /// Requests per connection (1: one connection per request).
    pub requests: u32,
    /// Open loop: new connections per second (0: closed loop).
    pub cps: u64,
    /// Open loop: requests per second over the open connections (0: each
    /// connection sends its next request as soon as it has the response).
    pub rps: u64,
    /// Raw echo instead of HTTP: each request is this many bytes, and the
    /// response is the same bytes back (checked).
    pub echo: Option<u32>,
    /// The requests, built once and taken in turn (several URLs): at least
    /// one.
    pub request_list: Arc<[Request]>,
    /// Pause between a response and the next request on a connection.
    pub think: Duration,
    /// Opens at most this many connections per loop iteration.
    pub open_burst: u32,
}

/// How a closed loop opens its connections (`Schedule::set_pacing`; an
/// open loop, `cps`, is paced by its rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pacing {
    /// As fast as the loop turns (`open_burst` a turn).
    None,
    /// A window of handshakes in flight that grows while they complete fast
    /// and halves when they are slow or fail (`schedule::WINDOW_START` ..
    /// `WINDOW_MAX`): the generator opens as fast as the peer answers.
    Adaptive,
    /// Evenly over this long until all are open (within the adaptive
    /// window too); then as `Adaptive`.
    Ramp(Duration),
}

/// A request the load generator sends, serialised once at start.
#[derive(Debug, Clone)]
pub struct Request {
    /// Its bytes, but on a connection's last request.
    pub bytes: Payload,
    /// Its bytes as a connection's last request (with `Connection: close`
    /// when the server is to close first, as wrk's `-H "Connection: close"`
    /// asks).
    pub last: Payload,
    /// A HEAD request: its response has no body, whatever its head says.
    pub head: bool,
}

impl Request {
    pub fn new(bytes: impl Into<Arc<[u8]>>, last: impl Into<Arc<[u8]>>) -> Request {
        let bytes = Payload::new(bytes);
        Request {
            head: bytes.starts_with(b"HEAD "),
            last: Payload::new(last),
            bytes,
        }
    }

    /// A list of one request, `bytes`, with `last` as a connection's last.
    pub fn only(bytes: impl Into<Arc<[u8]>>, last: impl Into<Arc<[u8]>>) -> Arc<[Request]> {
        Arc::from([Request::new(bytes, last)])
    }
}

/// The most requests a `ClientConfig::request_list` holds (a connection
/// keeps its request's place in 16 bits).
pub const MAX_REQUEST_LIST: usize = 1 << 16;

/// A client connection's application state: a few words between requests
/// (its framer is held only inside a response, `LazyFramer`; one instant
/// serves the three times it needs, which never overlap).
#[derive(Debug, Clone)]
pub struct ClientConn {
    framer: LazyFramer,
    /// While handshaking: when the SYN was sent, or was due (open loop).
    /// In a request: when it was sent (or due). In think time (`THINKING`):
    /// when the next request goes.
    t: Instant,
    done_requests: u32,
    /// Which of `ClientConfig::request_list` the current request is (a
    /// list is at most `MAX_REQUEST_LIST` long).
    req: u16,
    /// Bytes of the current request queued so far.
    sent: u32,
    /// Echo: bytes of the current response received so far.
    echo_got: u32,
    /// `IN_REQUEST`, `LAST`, ... below.
    flags: u8,
    /// Its handshake has not completed yet (the generator's pacing counts
    /// handshakes in flight).
    pub handshaking: bool,
}

// `ClientConn::flags`.
/// A request is out and its response not complete.
const IN_REQUEST: u8 = 1;
/// The current request is the connection's last.
const LAST: u8 = 2;
/// The last response said `Connection: close`: the server closes first.
const AWAIT_PEER_CLOSE: u8 = 4;
/// The current response's first byte has arrived.
const GOT_FIRST: u8 = 8;
/// Completed every request and closed.
const FINISHED: u8 = 16;
/// `--rps`: waiting for the shard to hand it a scheduled request.
const IDLE: u8 = 32;
/// In the shard's queue of idle connections.
const QUEUED: u8 = 64;
/// Think time: `t` is when the next request goes.
const THINKING: u8 = 128;

impl crate::flags::Flags8 for ClientConn {
    #[inline(always)]
    fn bits(&mut self) -> &mut u8 {
        &mut self.flags
    }
    #[inline(always)]
    fn bits_ref(&self) -> u8 {
        self.flags
    }
}

impl ClientConn {
    pub fn new(t_open: Instant) -> ClientConn {
        ClientConn {
            framer: LazyFramer::new(),
            t: t_open,
            done_requests: 0,
            req: 0,
            sent: 0,
            echo_got: 0,
            flags: 0,
            handshaking: true,
        }
    }

    /// Completed every request and closed.
    #[inline]
    pub fn finished(&self) -> bool {
        self.has(FINISHED)
    }

    /// `--rps`: waiting for the shard to hand it a scheduled request.
    #[inline]
    pub fn idle(&self) -> bool {
        self.has(IDLE)
    }

    /// In the shard's queue of idle connections.
    #[inline]
    pub fn queued(&self) -> bool {
        self.has(QUEUED)
    }

    pub fn set_queued(&mut self, on: bool) {
        self.set(QUEUED, on);
    }

    /// Think time: the next request waits until then (`NEVER`: not thinking).
    #[inline]
    pub fn next_at(&self) -> Instant {
        if self.has(THINKING) {
            self.t
        } else {
            Instant::NEVER
        }
    }

    /// Its first think time (just connected) ends at `at` instead: the
    /// shard spreads first requests its own way (`timers::ThinkQueues`).
    pub fn set_first_request_at(&mut self, at: Instant) {
        if self.has(THINKING) && !self.has(IN_REQUEST) {
            self.t = at;
        }
    }

    /// `next_at`, unless it has finished: when the shard is to wake it.
    #[inline]
    pub fn wake_at(&self) -> Instant {
        if self.flags & (THINKING | FINISHED) == THINKING {
            self.t
        } else {
            Instant::NEVER
        }
    }

    /// `--rps`: idle, not finished, and not yet in the shard's queue.
    #[inline]
    pub fn wants_queueing(&self) -> bool {
        self.flags & (IDLE | FINISHED | QUEUED) == IDLE
    }

    #[inline]
    fn set_next_at(&mut self, at: Instant) {
        self.set(THINKING, at != Instant::NEVER);
        if at != Instant::NEVER {
            self.t = at;
        }
    }

    /// Bytes its application state holds outside the connection (a framer
    /// inside a response).
    pub fn memory(&self) -> usize {
        self.framer.memory()
    }

    /// When its SYN was sent (or was due, open loop): known until its
    /// handshake completes (`Event::Connected`), when the time it holds
    /// becomes its first request's or think time's.
    pub fn opened_at(&self) -> Instant {
        self.t
    }

    /// The run is over (`stop_at`): a connection with no request in flight
    /// is done and closes, counted `closed_at_end`; one waiting for a
    /// response closes once it arrives (`response_done`). True if it closed.
    pub fn close_at_end(&mut self, cx: &mut AppCx<'_>, c: &mut impl Socket) -> bool {
        if self.has(FINISHED) || self.has(IN_REQUEST) || self.handshaking {
            return false;
        }
        self.set(IDLE, false);
        self.set(FINISHED, true);
        self.set_next_at(Instant::NEVER);
        cx.stats.completed += 1;
        cx.stats.closed_at_end += 1;
        c.close();
        true
    }

    #[inline(always)]
    pub fn on_event(
        &mut self,
        cx: &mut AppCx<'_>,
        cc: &ClientConfig,
        c: &mut impl Socket,
        ev: Event,
    ) {
        match ev {
            Event::Connected => {
                self.handshaking = false;
                if self.t >= cx.record_from {
                    record(&mut cx.latency.connect, cx.now.saturating_since(self.t));
                }
                // Open loop: the first request counts from when the connection
                // was due (wrk2's coordinated-omission rule), so a stalled
                // server shows in the latencies instead of slowing the load.
                if cc.rps > 0 {
                    self.set(IDLE, true); // the shard schedules its requests
                } else if cc.requests > 1 && cx.now >= cx.stop_at {
                    // Open after the run ended: nothing more to ask (a
                    // one-request connection still makes its request).
                    self.close_at_end(cx, c);
                } else if cc.cps == 0 && cc.requests > 1 && !cc.think.is_zero() {
                    // Closed loop with think time: the first request at a
                    // point spread over the first think time, so connections
                    // opened together do not ask in lockstep for the whole
                    // run (a million opened in two seconds would otherwise
                    // send a million requests in two seconds of every
                    // twenty, and queue past the peer's RTO).
                    self.set_next_at(cx.now + first_think(cc.think));
                } else {
                    let t = if cc.cps > 0 { self.t } else { cx.now };
                    self.start_request(cx, cc, c, t);
                }
            }
            Event::Writable => self.send_rest(cc, c),
            Event::Readable => self.read(cx, cc, c),
            Event::PeerClosed => {
                self.read(cx, cc, c);
                if self.has(IN_REQUEST) && !self.has(FINISHED) && cc.echo.is_none() {
                    self.read_eof(cx, cc, c);
                }
                if self.has(AWAIT_PEER_CLOSE) {
                    self.set(AWAIT_PEER_CLOSE, false);
                } else if !self.has(FINISHED) {
                    // The server closed before every response arrived.
                    cx.stats.app_errors += 1;
                    self.set(FINISHED, true);
                }
                c.close();
            }
            Event::Closed(_) => self.set(FINISHED, true),
        }
    }

    /// Think time over: send the next request.
    pub fn on_tick(&mut self, cx: &mut AppCx<'_>, cc: &ClientConfig, c: &mut impl Socket) {
        if self.next_at() <= cx.now && !self.has(FINISHED) && !self.has(IN_REQUEST) {
            self.set_next_at(Instant::NEVER);
            if cx.now >= cx.stop_at {
                self.close_at_end(cx, c); // the run is over: no next request
            } else {
                self.start_request(cx, cc, c, cx.now);
            }
        }
    }

    /// `--rps`: sends the request that was due at `due` (latency counts from
    /// then). False if the connection cannot take it now.
    pub fn start_scheduled(
        &mut self,
        cx: &mut AppCx<'_>,
        cc: &ClientConfig,
        c: &mut impl Socket,
        due: Instant,
    ) -> bool {
        if !self.has(IDLE) || self.has(FINISHED) || self.has(IN_REQUEST) {
            return false;
        }
        self.set(IDLE, false);
        self.start_request(cx, cc, c, due);
        true
    }

    /// `--rps` at the end of the run: an idle connection is done; it closes.
    pub fn finish_idle(&mut self, cx: &mut AppCx<'_>, c: &mut impl Socket) {
        if self.has(IDLE) {
            self.close_at_end(cx, c);
        }
    }

    #[inline]
    fn start_request(
        &mut self,
        cx: &mut AppCx<'_>,
        cc: &ClientConfig,
        c: &mut impl Socket,
        t: Instant,
    ) {
        // (Not in think time: `t` becomes the request's.)
        debug_assert!(!self.has(THINKING));
        self.set(IN_REQUEST, true);
        self.set(LAST, self.done_requests.saturating_add(1) >= cc.requests);
        // Several requests: the shard's next in turn.
        // (Past `MAX_REQUEST_LIST`, which the options refuse, the list's
        // tail would go unused: `req` has 16 bits.)
        let n = cc.request_list.len().min(MAX_REQUEST_LIST);
        let k = if n > 1 {
            (cx.stats.requests_sent % n as u64) as u16
        } else {
            0
        };
        self.req = k;
        if let Some(r) = cc.request_list.get(usize::from(k)) {
            self.framer.expect_no_body(r.head);
        }
        self.set(GOT_FIRST, false);
        self.t = t;
        self.sent = 0;
        cx.stats.requests_sent += 1;
        self.send_rest(cc, c);
    }

    #[inline]
    fn send_rest(&mut self, cc: &ClientConfig, c: &mut impl Socket) {
        let Some(r) = cc.request_list.get(self.req as usize) else {
            return;
        };
        let req = if self.has(LAST) { &r.last } else { &r.bytes };
        if !self.has(IN_REQUEST) || self.sent as usize >= req.len() {
            return;
        }
        match send_from(c, req, self.sent as usize) {
            Ok(n) => self.sent += n as u32, // the rest on Writable
            Err(SendError::Closed) => {
                // The request cannot go out: the connection is over, and how
                // it ended (reset, refused, ...) is counted when it closes.
                self.set(IN_REQUEST, false);
                self.set(FINISHED, true);
            }
        }
    }

    fn read(&mut self, cx: &mut AppCx<'_>, cc: &ClientConfig, c: &mut impl Socket) {
        /// What a read brought.
        enum Got {
            /// Bytes with no request out.
            Unasked,
            /// Part of the response.
            Part,
            /// The rest of the response: the server closes after it (true)
            /// or not.
            Response(bool),
            /// Not the response asked for.
            Bad,
        }
        // (A peer's FIN with no data: nothing to set up.)
        if !c.may_recv() {
            return;
        }
        loop {
            // Taken where the socket holds the bytes.
            let got = c.recv_with(cx.scratch, |data| {
                if !self.has(IN_REQUEST) {
                    return Got::Unasked;
                }
                if !self.has(GOT_FIRST) {
                    self.set(GOT_FIRST, true);
                    if self.t >= cx.record_from {
                        record(&mut cx.latency.first_byte, cx.now.saturating_since(self.t));
                    }
                }
                let mut completed = 0u32;
                let mut server_closes = false;
                let mut not_response = false;
                let res = match cc.echo {
                    Some(len) => {
                        // Echo: the same bytes back, checked, then it is complete.
                        let got = self.echo_got as usize;
                        let same = data
                            .iter()
                            .enumerate()
                            .all(|(k, b)| *b == echo_byte(got + k));
                        self.echo_got += data.len() as u32;
                        if self.echo_got == len {
                            self.echo_got = 0;
                            completed = 1;
                        }
                        if same && self.echo_got <= len {
                            Ok(())
                        } else {
                            Err(http::FrameError::BadHead)
                        }
                    }
                    None => {
                        let stats = &mut *cx.stats;
                        self.framer.feed_memo(data, &mut cx.heads.responses, |m| {
                            completed += 1;
                            server_closes = m.close;
                            not_response |= m.status == 0; // a request's start line
                            count_response(stats, m);
                        })
                    }
                };
                if res.is_err() || completed > 1 || not_response {
                    Got::Bad
                } else if completed == 1 {
                    Got::Response(server_closes)
                } else {
                    Got::Part
                }
            });
            match got {
                None => return,
                Some(Got::Unasked) => cx.stats.app_errors += 1, // bytes nobody asked for
                Some(Got::Part) => {}
                Some(Got::Response(server_closes)) => {
                    if self.response_done(cx, cc, c, server_closes) {
                        return;
                    }
                }
                Some(Got::Bad) => {
                    cx.stats.app_errors += 1;
                    self.set(FINISHED, true);
                    c.abort();
                    return;
                }
            }
        }
    }

    /// The server's FIN: a response the close delimits ends here; one cut
    /// short is the early close `on_event` counts.
    #[cold]
    #[inline(never)]
    fn read_eof(&mut self, cx: &mut AppCx<'_>, cc: &ClientConfig, c: &mut impl Socket) {
        if let Ok(Some(m)) = self.framer.eof() {
            count_response(cx.stats, m);
            self.response_done(cx, cc, c, true);
        }
    }

    /// The current request's response is complete: records it, then
    /// closes (true) or goes on to the next request.
    #[inline]
    fn response_done(
        &mut self,
        cx: &mut AppCx<'_>,
        cc: &ClientConfig,
        c: &mut impl Socket,
        server_closes: bool,
    ) -> bool {
        cx.stats.responses += 1;
        if self.t >= cx.record_from {
            record(&mut cx.latency.request, cx.now.saturating_since(self.t));
        }
        self.set(IN_REQUEST, false);
        self.done_requests += 1;
        if server_closes || self.done_requests >= cc.requests || cx.now >= cx.stop_at {
            self.set(FINISHED, true);
            cx.stats.completed += 1;
            if !server_closes && self.done_requests < cc.requests {
                cx.stats.closed_at_end += 1; // more to ask, but the run is over
            }
            if server_closes && !c.peer_closed() {
                // The server closes first (and holds TIME_WAIT): close
                // once its FIN arrives.
                self.set(AWAIT_PEER_CLOSE, true);
            } else {
                c.close();
            }
            return true;
        }
        if cc.rps > 0 {
            self.set(IDLE, true);
        } else if cc.think.is_zero() {
            self.start_request(cx, cc, c, cx.now);
        } else {
            self.set_next_at(cx.now + cc.think);
            // The response's ACK: nothing of ours will ride on it.
            c.sending_nothing_for(cc.think);
        }
        false
    }
}

/// A point in `[0, think)` for a connection's first request: a golden-ratio
/// (Weyl) sequence per thread, so successive connections' first requests are
/// spread evenly over the think time whatever order they connect in.
fn first_think(think: Duration) -> Duration {
    use std::cell::Cell;
    thread_local! {
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }
    let k = NEXT.with(|n| {
        let v = n.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        n.set(v);
        v
    });
    let ns = u64::try_from(think.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(((u128::from(ns) * u128::from(k)) >> 64) as u64)
}

/// Counts a final response by its status class, and its body bytes.
#[inline]
fn count_response(stats: &mut ShardStats, m: http::Message) {
    let class = StatusClass::of(m.status);
    stats.status[class.index()] += 1;
    stats.response_body_bytes += m.body_len;
    if class != StatusClass::Success {
        stats.non_2xx += 1;
    }
}

/// The byte at `offset` of an echo request.
pub fn echo_byte(offset: usize) -> u8 {
    b'a' + (offset % 26) as u8
}

/// A connection's application state.
#[derive(Debug, Clone)]
pub enum AppConn {
    Server(ServerConn),
    Client(ClientConn),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::FourTuple;
    use crate::wire::SeqNumber;

    #[test]
    fn first_requests_spread_evenly_over_the_think_time() {
        let think = Duration::from_secs(20);
        let mut deciles = [0u32; 10];
        for _ in 0..10_000 {
            let t = first_think(think);
            assert!(t < think, "{t:?}");
            deciles[(t.as_nanos() * 10 / think.as_nanos()) as usize] += 1;
        }
        // Even: each tenth of the think time gets its tenth of the first
        // requests (a golden-ratio sequence is within a few of it).
        for (i, &n) in deciles.iter().enumerate() {
            assert!((990..=1010).contains(&n), "decile {i}: {n} of 10000");
        }
    }

    /// A socket in memory: `input` to read, `room` bytes of send buffer,
    /// and whether it still sends.
    #[derive(Default)]
    struct FakeSocket {
        input: Vec<u8>,
        sent: Vec<u8>,
        room: usize,
        closed_for_sending: bool,
        closes: u32,
        aborts: u32,
    }

    impl Socket for FakeSocket {
        fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
            if self.closed_for_sending {
                return Err(SendError::Closed);
            }
            let n = data.len().min(self.room);
            self.sent.extend_from_slice(&data[..n]);
            self.room -= n;
            Ok(n)
        }
        fn recv(&mut self, out: &mut [u8]) -> usize {
            let n = self.input.len().min(out.len());
            out[..n].copy_from_slice(&self.input[..n]);
            self.input.drain(..n);
            n
        }
        fn send_capacity(&self) -> usize {
            self.room
        }
        fn want_writable(&mut self) {}
        fn peer_closed(&self) -> bool {
            false
        }
        fn close(&mut self) {
            self.closes += 1;
            self.closed_for_sending = true;
        }
        fn abort(&mut self) {
            self.aborts += 1;
            self.closed_for_sending = true;
        }
    }

    struct Cx {
        stats: ShardStats,
        latency: Latency,
        scratch: Vec<u8>,
        heads: crate::app::http::HeadMemos,
    }

    impl Cx {
        fn new() -> Cx {
            Cx {
                stats: ShardStats::default(),
                latency: Latency::default(),
                scratch: vec![0; 4096],
                heads: Default::default(),
            }
        }
        fn cx(&mut self) -> AppCx<'_> {
            AppCx {
                now: Instant::from_millis(1),
                stats: &mut self.stats,
                latency: &mut self.latency,
                scratch: &mut self.scratch,
                heads: &mut self.heads,
                stop_at: Instant::NEVER,
                record_from: Instant::ZERO,
            }
        }
    }

    #[test]
    fn engine_send_tells_full_from_closed() {
        let cfg = TcpConfig {
            send_buffer: 1000,
            ..TcpConfig::default()
        };
        let now = Instant::from_millis(1);
        let tuple = FourTuple {
            local: "10.0.0.1:40000".parse().unwrap(),
            remote: "10.0.0.2:80".parse().unwrap(),
        };
        let mut conn = Connection::connect(&cfg, tuple, SeqNumber(1), now);
        let mut s = EngineSocket {
            conn: &mut conn,
            cfg: &cfg,
            now,
            queued: &mut QueuedSum::default(),
        };
        assert_eq!(s.send(&[1; 600]), Ok(600));
        assert_eq!(s.send(&[1; 600]), Ok(400), "what fits");
        assert_eq!(s.send(&[1; 600]), Ok(0), "full: not closed");
        s.close();
        assert_eq!(s.send(&[1; 10]), Err(SendError::Closed));
    }

    #[test]
    fn http_server_waits_when_full_and_stops_when_closed() {
        let req = http::request("h", "/", false);
        let resp = http::response(100, false);
        let mut cx = Cx::new();
        // Full: the response waits for room, and goes out once there is.
        let mut full = FakeSocket {
            input: req.clone(),
            ..FakeSocket::default()
        };
        let mut app = ServerConn::new(0);
        let http = ServerApp::http(100, 0);
        app.on_event(&http, &mut cx.cx(), &mut full, Event::Readable);
        assert!(full.sent.is_empty());
        assert!(!app.done);
        full.room = resp.len();
        app.on_event(&http, &mut cx.cx(), &mut full, Event::Writable);
        assert_eq!(full.sent, resp);
        assert_eq!(cx.stats.responses, 1);
        // Closed: nothing is owed any more, and what still arrives is drained.
        let mut closed = FakeSocket {
            input: req.clone(),
            closed_for_sending: true,
            ..FakeSocket::default()
        };
        let mut app = ServerConn::new(0);
        let http = ServerApp::http(100, 0);
        app.on_event(&http, &mut cx.cx(), &mut closed, Event::Readable);
        assert!(app.done);
        assert_eq!(app.owed, 0);
        closed.input = req.clone();
        app.on_event(&http, &mut cx.cx(), &mut closed, Event::Readable);
        assert!(closed.input.is_empty(), "drained");
        assert_eq!(cx.stats.responses, 1, "no response counted for it");
        assert_eq!((closed.closes, closed.aborts), (0, 0));
    }

    #[test]
    fn echo_stops_when_closed() {
        let mut cx = Cx::new();
        let mut s = FakeSocket {
            input: b"hello".to_vec(),
            room: 100,
            ..FakeSocket::default()
        };
        let mut app = ServerConn::new(0);
        let echo = ServerApp::Echo;
        app.on_event(&echo, &mut cx.cx(), &mut s, Event::Readable);
        assert_eq!(s.sent, b"hello");
        s.closed_for_sending = true;
        s.input = b"more".to_vec();
        app.on_event(&echo, &mut cx.cx(), &mut s, Event::Readable);
        assert!(app.done);
    }

    #[test]
    fn client_request_on_a_closed_connection_ends_it() {
        let mut cx = Cx::new();
        let req: Arc<[u8]> = http::request("h", "/", false).into();
        let cc = ClientConfig {
            target: "10.0.0.2:80".parse().unwrap(),
            src_first: Ipv4Addr::new(10, 0, 0, 1),
            src_count: 1,
            ports: (1000, 2000),
            connections: 1,
            requests: 2,
            cps: 0,
            rps: 0,
            echo: None,
            request_list: Request::only(req.clone(), req.clone()),
            think: Duration::ZERO,
            open_burst: 1,
        };
        // Full: part now, the rest on Writable.
        let mut s = FakeSocket {
            room: 10,
            ..FakeSocket::default()
        };
        let mut cl = ClientConn::new(Instant::ZERO);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
        assert_eq!(s.sent.len(), 10);
        s.room = 1000;
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Writable);
        assert_eq!(s.sent, &req[..]);
        assert!(!cl.finished());
        // Closed: the request cannot go; the connection is finished.
        let mut s = FakeSocket {
            closed_for_sending: true,
            ..FakeSocket::default()
        };
        let mut cl = ClientConn::new(Instant::ZERO);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
        assert!(cl.finished());
        assert!(!cl.has(IN_REQUEST));
        assert_eq!(cx.stats.completed, 0);
    }

    fn client_cfg(list: Arc<[Request]>, requests: u32) -> ClientConfig {
        ClientConfig {
            target: "10.0.0.2:80".parse().unwrap(),
            src_first: Ipv4Addr::new(10, 0, 0, 1),
            src_count: 1,
            ports: (1000, 2000),
            connections: 1,
            requests,
            cps: 0,
            rps: 0,
            echo: None,
            request_list: list,
            think: Duration::ZERO,
            open_burst: 1,
        }
    }

    fn get(method: &str, path: &str) -> Request {
        let spec = http::RequestSpec {
            method,
            host: "h",
            path,
            ..http::RequestSpec::default()
        };
        Request::new(spec.build(), spec.build())
    }

    /// Responses arrive as real servers send them (chunked, interim, to a
    /// HEAD request, Connection: close): each is framed, counted by status
    /// class with its body bytes, and the requests go out in turn.
    #[test]
    fn client_counts_status_classes_and_sends_requests_in_turn() {
        let mut cx = Cx::new();
        let list: Arc<[Request]> =
            Arc::from([get("GET", "/a"), get("HEAD", "/b"), get("GET", "/c")]);
        let cc = client_cfg(list.clone(), 10);
        let mut s = FakeSocket {
            room: 100_000,
            ..FakeSocket::default()
        };
        let mut cl = ClientConn::new(Instant::ZERO);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
        assert_eq!(s.sent, &list[0].bytes[..]);
        s.sent.clear();
        s.input =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\n\r\n"
                .to_vec();
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
        assert_eq!(s.sent, &list[1].bytes[..], "HEAD /b next");
        s.sent.clear();
        // The answer to HEAD: its length describes a body not sent.
        s.input = b"HTTP/1.1 404 Not Found\r\nContent-Length: 100\r\n\r\n".to_vec();
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
        assert_eq!(s.sent, &list[2].bytes[..], "GET /c next");
        s.sent.clear();
        s.input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Busy\r\nContent-Length: 2\r\n\
                    Connection: close\r\n\r\nno"
            .to_vec();
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
        assert!(
            s.sent.is_empty(),
            "the server closes: no more requests on it"
        );
        assert!(cl.finished() && cl.has(AWAIT_PEER_CLOSE));
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::PeerClosed);
        let st = &cx.stats;
        assert_eq!(st.status, [1, 0, 1, 1, 0]);
        assert_eq!(st.response_body_bytes, 5 + 2);
        assert_eq!((st.responses, st.requests_sent, st.non_2xx), (3, 3, 2));
        assert_eq!((st.completed, st.app_errors, s.aborts), (1, 0, 0));
    }

    /// A response with no length ends with the connection: complete at the
    /// server's FIN, not an error.
    #[test]
    fn client_reads_a_body_to_the_close() {
        let mut cx = Cx::new();
        let cc = client_cfg(Arc::from([get("GET", "/")]), 1);
        let mut s = FakeSocket {
            room: 100_000,
            ..FakeSocket::default()
        };
        let mut cl = ClientConn::new(Instant::ZERO);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
        s.input = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nall of it".to_vec();
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
        assert_eq!(cx.stats.responses, 0, "not yet: the close ends it");
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::PeerClosed);
        let st = &cx.stats;
        assert_eq!((st.responses, st.completed, st.app_errors), (1, 1, 0));
        assert_eq!((st.status[0], st.response_body_bytes), (1, 9));
        // Cut short inside a Content-Length body: an error.
        let mut cx = Cx::new();
        let mut s = FakeSocket {
            room: 100_000,
            ..FakeSocket::default()
        };
        let mut cl = ClientConn::new(Instant::ZERO);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
        s.input = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec();
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
        cl.on_event(&mut cx.cx(), &cc, &mut s, Event::PeerClosed);
        assert_eq!((cx.stats.responses, cx.stats.app_errors), (0, 1));
    }

    /// Framing that cannot be read is counted and the connection reset;
    /// nothing panics.
    #[test]
    fn client_bad_framing_is_an_error() {
        for bad in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            // A second response to one request.
            b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            // Not a response.
            b"\x00\x01garbage\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        ] {
            let mut cx = Cx::new();
            let cc = client_cfg(Arc::from([get("GET", "/")]), 5);
            let mut s = FakeSocket {
                room: 100_000,
                ..FakeSocket::default()
            };
            let mut cl = ClientConn::new(Instant::ZERO);
            cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Connected);
            s.input = bad.to_vec();
            cl.on_event(&mut cx.cx(), &cc, &mut s, Event::Readable);
            assert_eq!((cx.stats.app_errors, s.aborts), (1, 1), "{bad:?}");
            assert!(cl.finished());
        }
    }
}
