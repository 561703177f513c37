//! Kernel-socket mode (`--kernel`): the same applications as the DPDK shards
//! (src/app) over Linux TCP sockets, one mio event loop per pinned core, with
//! the same counters, histograms and report. It runs where DPDK cannot, and
//! it is the baseline that shows what sluice's own TCP is worth: identical
//! applications and accounting, only the stack underneath differs.

use crate::app::schedule::{Dispatch, Schedule};
use crate::app::{
    AppConn, AppCx, ClientConfig, ClientConn, SendError, ServerApp, ServerConn, Socket,
};
use crate::stats::output::Intervals;
use crate::stats::{Latency, ShardStats};
use crate::tcp::{CloseReason, Event, State};
use crate::time::Instant;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use std::collections::BinaryHeap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// A monotonic clock in the engine's `Instant` (nanoseconds from its start).
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: std::time::Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: std::time::Instant::now(),
        }
    }
    pub fn now(&self) -> Instant {
        Instant(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX) + 1)
    }
}

/// What an application may queue beyond what the kernel takes at once (the
/// engine's send buffer plays this part on the DPDK side).
const SEND_QUEUE: usize = 256 * 1024;

/// A Linux TCP socket as an application sees it.
pub struct KernelSocket {
    stream: TcpStream,
    /// Bytes the kernel did not take yet, from `at`.
    out: Vec<u8>,
    at: usize,
    eof: bool,
    error: Option<CloseReason>,
    close_wanted: bool,
    write_shut: bool,
    aborted: bool,
    want_write: bool,
    /// The last read found the socket empty (mio is edge-triggered: more
    /// readiness comes only after a read that would block).
    drained: bool,
    reads: u64,
}

impl KernelSocket {
    fn new(stream: TcpStream) -> KernelSocket {
        KernelSocket {
            stream,
            out: Vec::new(),
            at: 0,
            eof: false,
            error: None,
            close_wanted: false,
            write_shut: false,
            aborted: false,
            want_write: false,
            drained: false,
            reads: 0,
        }
    }

    fn pending(&self) -> usize {
        self.out.len() - self.at
    }

    fn fail(&mut self, e: &io::Error) {
        self.error.get_or_insert(match e.kind() {
            io::ErrorKind::ConnectionRefused => CloseReason::Refused,
            io::ErrorKind::TimedOut => CloseReason::TimedOutRetransmit,
            _ => CloseReason::ResetByPeer,
        });
    }

    /// Writes directly; the bytes the kernel took.
    fn write_now(&mut self, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            match self.stream.write(&data[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    self.fail(&e);
                    break;
                }
            }
        }
        done
    }

    /// Hands queued bytes to the kernel (and the FIN once they are all
    /// gone, if the application closed).
    fn flush(&mut self) {
        if self.pending() > 0 {
            let out = std::mem::take(&mut self.out);
            let n = self.write_now(&out[self.at..]);
            self.out = out;
            self.at += n;
            if self.at == self.out.len() {
                self.out.clear();
                self.at = 0;
            }
        }
        if self.pending() == 0 && self.close_wanted && !self.write_shut && self.error.is_none() {
            let _ = self.stream.shutdown(Shutdown::Write);
            self.write_shut = true;
        }
    }

    /// After close: reads and drops what still arrives, to see the FIN.
    fn discard_input(&mut self, scratch: &mut [u8]) {
        while !self.eof && self.error.is_none() && self.recv(scratch) > 0 {}
    }

    /// How the connection ended, if it has.
    fn ended(&self) -> Option<CloseReason> {
        if self.aborted {
            Some(CloseReason::Aborted)
        } else if self.error.is_some() {
            self.error
        } else if self.write_shut && self.eof {
            Some(CloseReason::Normal)
        } else {
            None
        }
    }
}

impl Socket for KernelSocket {
    fn send(&mut self, data: &[u8]) -> Result<usize, SendError> {
        if self.close_wanted || self.error.is_some() || self.aborted {
            return Err(SendError::Closed);
        }
        let direct = if self.pending() == 0 {
            self.write_now(data)
        } else {
            0
        };
        let rest = &data[direct..];
        let take = rest.len().min(SEND_QUEUE - self.pending().min(SEND_QUEUE));
        if take > 0 {
            if self.at > 0 {
                self.out.drain(..self.at);
                self.at = 0;
            }
            self.out.extend_from_slice(&rest[..take]);
        }
        if direct + take < data.len() {
            self.want_write = true;
        }
        Ok(direct + take)
    }

    fn recv(&mut self, out: &mut [u8]) -> usize {
        if self.eof || self.error.is_some() || self.aborted || out.is_empty() {
            return 0;
        }
        self.reads += 1;
        self.drained = true;
        loop {
            match self.stream.read(out) {
                Ok(0) => {
                    self.eof = true;
                    return 0;
                }
                Ok(n) => {
                    self.drained = false;
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return 0,
                Err(e) => {
                    self.fail(&e);
                    return 0;
                }
            }
        }
    }

    fn send_capacity(&self) -> usize {
        if self.close_wanted || self.error.is_some() {
            return 0;
        }
        SEND_QUEUE.saturating_sub(self.pending())
    }

    fn want_writable(&mut self) {
        self.want_write = true;
    }

    fn peer_closed(&self) -> bool {
        self.eof
    }

    fn close(&mut self) {
        self.close_wanted = true;
        self.flush();
    }

    fn abort(&mut self) {
        // SO_LINGER 0: close() sends RST.
        let _ = socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO));
        self.aborted = true;
    }
}

struct Conn {
    sock: KernelSocket,
    app: AppConn,
    connecting: bool,
    told_fin: bool,
    in_heap: Instant,
}

/// The load generator on one core: its settings and schedule (the same
/// schedule the DPDK shards drive; here the kernel picks the ports).
struct Gen {
    cfg: ClientConfig,
    sched: Schedule<usize>,
}

/// The load generator's IPv6 aim, which its `ClientConfig` (IPv4 only, as
/// the DPDK shards are for now) cannot hold: the target, and the source
/// addresses taken in turn (first, how many, the next's offset) if given.
#[derive(Debug, Clone, Copy)]
struct AimV6 {
    target: SocketAddrV6,
    sources: Option<(Ipv6Addr, u128, u128)>,
}

impl AimV6 {
    fn next_source(&mut self) -> Option<IpAddr> {
        let (first, count, next) = self.sources.as_mut()?;
        let ip = Ipv6Addr::from(u128::from(*first).wrapping_add(*next));
        *next = (*next + 1) % (*count).max(1);
        Some(IpAddr::V6(ip))
    }
}

/// A non-blocking connect to `target` (IPv4 or IPv6), from `src` if given
/// (the kernel picks the port) or from whatever address and port the kernel
/// picks.
fn connect_from(src: Option<IpAddr>, target: SocketAddr) -> io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket as Sock, Type};
    let Some(src) = src else {
        return TcpStream::connect(target);
    };
    let s = Sock::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    s.set_nonblocking(true)?;
    if src.is_ipv6() {
        // A source from a prefix routed to this host (`ip -6 route add local
        // PREFIX dev lo`) is not an address of an interface, and IPv6's bind
        // accepts it only free (IPv4's finds it by its local route).
        s.set_freebind_v6(true)?;
    }
    s.bind(&SocketAddr::new(src, 0).into())?;
    match s.connect(&target.into()) {
        Ok(()) => {}
        // EINPROGRESS (115 on Linux): the handshake goes on; writable when done.
        Err(e) if e.raw_os_error() == Some(115) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(std::net::TcpStream::from(s)))
}

const LISTENER_BASE: usize = usize::MAX / 2;

/// One core's event loop: listeners, connections, the load generator.
pub struct KernelShard {
    poll: Poll,
    events: Events,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    listeners: Vec<(TcpListener, ServerApp)>,
    client: Option<Gen>,
    /// Set for a load over IPv6 (`aim_v6`).
    v6: Option<AimV6>,
    /// Think-time wake-ups: (due, connection).
    wake: BinaryHeap<std::cmp::Reverse<(Instant, usize)>>,
    scratch: Vec<u8>,
    heads: crate::app::http::HeadMemos,
    ready: Vec<(Token, bool, bool)>,
    open: usize,
    pub stats: ShardStats,
    pub latency: Latency,
}

impl KernelShard {
    pub fn new() -> io::Result<KernelShard> {
        Ok(KernelShard {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            conns: Vec::new(),
            free: Vec::new(),
            listeners: Vec::new(),
            client: None,
            v6: None,
            wake: BinaryHeap::new(),
            scratch: vec![0u8; 64 * 1024],
            heads: Default::default(),
            ready: Vec::with_capacity(1024),
            open: 0,
            stats: ShardStats::default(),
            latency: Latency::default(),
        })
    }

    /// Listens on `addr` (IPv4 or IPv6) with `app`; with SO_REUSEPORT, so
    /// every core has its own listener on the same address and the kernel
    /// spreads connections. On `[::]` IPv4 is served too unless the host
    /// says otherwise (Linux's `net.ipv6.bindv6only`, 0 by default).
    pub fn listen(&mut self, addr: impl Into<SocketAddr>, app: ServerApp) -> io::Result<()> {
        self.listen_with(addr, app, false)
    }

    /// `listen`, and for an IPv6 address with `v6_only` the socket takes
    /// IPv6 only (IPV6_V6ONLY; RFC 3493 5.3), leaving IPv4 on the same port
    /// to a socket of its own.
    pub fn listen_with(
        &mut self,
        addr: impl Into<SocketAddr>,
        app: ServerApp,
        v6_only: bool,
    ) -> io::Result<()> {
        use socket2::{Domain, Protocol, Socket as Sock, Type};
        let addr: SocketAddr = addr.into();
        let s = Sock::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        if v6_only && addr.is_ipv6() {
            s.set_only_v6(true)?;
        }
        s.set_reuse_address(true)?;
        s.set_reuse_port(true)?;
        s.set_nonblocking(true)?;
        s.bind(&addr.into())?;
        s.listen(4096)?;
        let mut l = TcpListener::from_std(s.into());
        let token = Token(LISTENER_BASE + self.listeners.len());
        self.poll
            .registry()
            .register(&mut l, token, Interest::READABLE)?;
        self.listeners.push((l, app));
        Ok(())
    }

    /// The address listener `i` is bound to (port 0 asks the kernel for one).
    pub fn listen_addr(&self, i: usize) -> Option<SocketAddr> {
        self.listeners.get(i).and_then(|(l, _)| l.local_addr().ok())
    }

    /// Starts the load generator (as `Stack::start_client` does).
    pub fn start_client(
        &mut self,
        cfg: ClientConfig,
        now: Instant,
        duration: Duration,
        warmup: Duration,
    ) {
        self.client = Some(Gen {
            sched: Schedule::new(&cfg, now, duration, warmup, 0),
            cfg,
        });
    }

    /// Aims the load generator (before `drive_client`) at an IPv6 `target`,
    /// which its `ClientConfig` cannot hold (its `target` and sources are
    /// then unused), from `sources` in turn (the first address and how many)
    /// if given, else from what the kernel picks.
    pub fn aim_v6(&mut self, target: SocketAddrV6, sources: Option<(Ipv6Addr, u128)>) {
        self.v6 = Some(AimV6 {
            target,
            sources: sources.map(|(first, count)| (first, count, 0)),
        });
    }

    pub fn stop_client(&mut self, now: Instant) {
        if let Some(g) = &mut self.client {
            g.sched.stop(now);
        }
    }

    pub fn client_active(&self) -> u32 {
        self.client.as_ref().map_or(0, |g| g.sched.active())
    }

    pub fn connections(&self) -> usize {
        self.open
    }

    /// Per-state counts as far as this side knows them: connecting (SYN_SENT),
    /// open (ESTABLISHED), listeners; TIME_WAIT is the kernel's.
    pub fn count_states(&mut self) {
        let mut s = [0u64; crate::stats::STATES.len()];
        for c in self.conns.iter().flatten() {
            let st = if c.connecting {
                State::SynSent
            } else {
                State::Established
            };
            s[st as usize] += 1;
        }
        s[State::Listen as usize] = self.listeners.len() as u64;
        self.stats.states = s;
    }

    /// Resets every open connection (at exit).
    pub fn abort_all(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            if let Some(c) = &mut self.conns[i] {
                c.sock.abort();
                self.settle(now, i);
            }
        }
    }

    /// One turn: waits for readiness (at most `max_wait`), serves it, runs
    /// the generator. Returns the events handled.
    pub fn turn(&mut self, clock: &Clock, max_wait: Duration) -> io::Result<usize> {
        let now = clock.now();
        let wait = self.next_wait(now, max_wait);
        match self.poll.poll(&mut self.events, Some(wait)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let t0 = clock.now();
        // Readiness copied out (the handlers need `self`), into a reused buffer.
        let mut ready = std::mem::take(&mut self.ready);
        ready.clear();
        ready.extend(self.events.iter().map(|e| {
            (
                e.token(),
                e.is_readable() || e.is_read_closed() || e.is_error(),
                e.is_writable() || e.is_write_closed() || e.is_error(),
            )
        }));
        for &(token, r, w) in &ready {
            if token.0 >= LISTENER_BASE {
                self.accept(t0, token.0 - LISTENER_BASE);
            } else {
                self.service(t0, token.0, r, w);
            }
        }
        self.run_generator(clock.now());
        let t1 = clock.now();
        self.stats.busy_ns += (t1 - t0).as_nanos() as u64;
        let n = ready.len();
        self.ready = ready;
        Ok(n)
    }

    fn next_wait(&self, now: Instant, max_wait: Duration) -> Duration {
        let mut due = now + max_wait;
        if let Some(std::cmp::Reverse((t, _))) = self.wake.peek() {
            due = due.min(*t);
        }
        if let Some(g) = &self.client {
            due = g.sched.next_event(now, due);
        }
        due.saturating_since(now)
    }

    /// Registers a new socket under the token of the slot `slot` fills next.
    fn register(&mut self, stream: &mut TcpStream) -> bool {
        let next = self.free.last().copied().unwrap_or(self.conns.len());
        self.poll
            .registry()
            .register(stream, Token(next), Interest::READABLE | Interest::WRITABLE)
            .is_ok()
    }

    /// Stores a connection in the slot `register` announced.
    fn slot(&mut self, c: Conn) -> usize {
        self.open += 1;
        match self.free.pop() {
            Some(i) => {
                self.conns[i] = Some(c);
                i
            }
            None => {
                self.conns.push(Some(c));
                self.conns.len() - 1
            }
        }
    }

    fn accept(&mut self, now: Instant, l: usize) {
        loop {
            let (mut stream, _) = match self.listeners[l].0.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.stats.drop(crate::stats::DropReason::TableFull);
                    return;
                }
            };
            let _ = stream.set_nodelay(true);
            let app = AppConn::Server(ServerConn::new(l as u16));
            if !self.register(&mut stream) {
                self.stats.drop(crate::stats::DropReason::TableFull);
                continue;
            }
            let i = self.slot(Conn {
                sock: KernelSocket::new(stream),
                app,
                connecting: false,
                told_fin: false,
                in_heap: Instant::NEVER,
            });
            self.stats.accepted += 1;
            self.deliver(now, i, Event::Connected);
            self.service(now, i, true, true);
        }
    }

    /// Gives `ev` to connection `i`'s application.
    fn deliver(&mut self, now: Instant, i: usize, ev: Event) {
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        let (stop_at, record_from) = self
            .client
            .as_ref()
            .map_or((Instant::NEVER, Instant::NEVER), |g| {
                (g.sched.stop_at(), g.sched.record_from())
            });
        let mut cx = AppCx {
            now,
            stats: &mut self.stats,
            latency: &mut self.latency,
            scratch: &mut self.scratch,
            heads: &mut self.heads,
            stop_at,
            record_from,
        };
        match &mut c.app {
            AppConn::Server(s) => match self.listeners.get(s.listener()) {
                Some((_, app)) => s.on_event(app, &mut cx, &mut c.sock, ev),
                None => debug_assert!(false, "a connection of no listener"),
            },
            AppConn::Client(cl) => {
                if let Some(g) = &self.client {
                    cl.on_event(&mut cx, &g.cfg, &mut c.sock, ev);
                }
            }
        }
    }

    /// Readiness on connection `i`.
    fn service(&mut self, now: Instant, i: usize, readable: bool, writable: bool) {
        let Some(c) = self.conns.get_mut(i).and_then(|c| c.as_mut()) else {
            return;
        };
        if c.connecting {
            match c.sock.stream.take_error() {
                Ok(Some(e)) | Err(e) => c.sock.fail(&e),
                Ok(None) => match c.sock.stream.peer_addr() {
                    Ok(_) => {
                        c.connecting = false;
                        let _ = c.sock.stream.set_nodelay(true);
                        self.deliver(now, i, Event::Connected);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                    Err(e) => c.sock.fail(&e),
                },
            }
        }
        for _ in 0..4 {
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if c.sock.ended().is_some() {
                break;
            }
            if writable {
                c.sock.flush();
            }
            if c.sock.want_write && c.sock.send_capacity() > 0 {
                c.sock.want_write = false;
                self.deliver(now, i, Event::Writable);
            }
            if readable {
                // Until the application has read everything there is, or
                // stops reading (its own flow control; a Writable resumes it).
                for _ in 0..16 {
                    let before = self.conns[i].as_ref().map_or(0, |c| c.sock.reads);
                    self.deliver(now, i, Event::Readable);
                    match self.conns[i].as_ref() {
                        Some(c) if !c.sock.drained && c.sock.reads != before => {}
                        _ => break,
                    }
                }
            }
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if c.sock.eof && !c.told_fin {
                c.told_fin = true;
                self.deliver(now, i, Event::PeerClosed);
            }
            let Some(c) = self.conns[i].as_mut() else {
                return;
            };
            if !(c.sock.want_write && c.sock.send_capacity() > 0) {
                break;
            }
        }
        if let Some(c) = self.conns[i].as_mut() {
            if c.sock.close_wanted {
                c.sock.flush();
                c.sock.discard_input(&mut self.scratch);
            }
        }
        self.settle(now, i);
    }

    /// After the application ran: think-time and `--rps` bookkeeping, and
    /// the end of the connection if it has ended.
    fn settle(&mut self, now: Instant, i: usize) {
        let Some(c) = self.conns[i].as_ref() else {
            return;
        };
        if let Some(r) = c.sock.ended() {
            self.deliver(now, i, Event::Closed(r));
            let Some(mut c) = self.conns[i].take() else {
                return;
            };
            let _ = self.poll.registry().deregister(&mut c.sock.stream);
            self.free.push(i);
            self.open -= 1;
            self.stats.count_close(r);
            if r == CloseReason::ResetByPeer || r == CloseReason::Refused {
                self.stats.rsts_in += 1;
            }
            if matches!(c.app, AppConn::Client(_)) {
                if let Some(g) = &mut self.client {
                    g.sched.closed();
                }
            }
            return;
        }
        let Some(c) = self.conns[i].as_mut() else {
            return;
        };
        if let AppConn::Client(cl) = &mut c.app {
            let next_at = cl.wake_at();
            if next_at != Instant::NEVER && c.in_heap != next_at {
                c.in_heap = next_at;
                self.wake.push(std::cmp::Reverse((next_at, i)));
            }
            if cl.wants_queueing() {
                if let Some(g) = &mut self.client {
                    cl.set_queued(true);
                    g.sched.idle(i);
                }
            }
        }
    }

    fn run_generator(&mut self, now: Instant) {
        // Think time over.
        while let Some(std::cmp::Reverse((t, i))) = self.wake.peek().copied() {
            if t > now {
                break;
            }
            self.wake.pop();
            let Some(c) = self.conns[i].as_mut() else {
                continue;
            };
            if c.in_heap != t {
                continue;
            }
            c.in_heap = Instant::NEVER;
            self.with_client(now, i, |cl, cx, cc, s| cl.on_tick(cx, cc, s));
        }
        self.dispatch_requests(now);
        self.open_connections(now);
    }

    fn with_client(
        &mut self,
        now: Instant,
        i: usize,
        f: impl FnOnce(&mut ClientConn, &mut AppCx<'_>, &ClientConfig, &mut KernelSocket),
    ) {
        let (Some(c), Some(g)) = (self.conns[i].as_mut(), self.client.as_ref()) else {
            return;
        };
        let AppConn::Client(cl) = &mut c.app else {
            return;
        };
        let mut cx = AppCx {
            now,
            stats: &mut self.stats,
            latency: &mut self.latency,
            scratch: &mut self.scratch,
            heads: &mut self.heads,
            stop_at: g.sched.stop_at(),
            record_from: g.sched.record_from(),
        };
        f(cl, &mut cx, &g.cfg, &mut c.sock);
        self.service(now, i, false, false);
    }

    /// `--rps`: each due request to an idle connection (see `Stack`).
    fn dispatch_requests(&mut self, now: Instant) {
        while let Some((i, what)) = self.client.as_mut().and_then(|g| g.sched.dispatch(now)) {
            let mut started = false;
            self.with_client(now, i, |cl, cx, cc, s| {
                cl.set_queued(false);
                match what {
                    Dispatch::Finish => cl.finish_idle(cx, s),
                    Dispatch::Request(due) => started = cl.start_scheduled(cx, cc, s, due),
                }
            });
            if started {
                if let Some(g) = self.client.as_mut() {
                    g.sched.request_started();
                }
            }
        }
    }

    fn open_connections(&mut self, now: Instant) {
        let mut opened = 0;
        loop {
            let Some(g) = self.client.as_mut() else {
                return;
            };
            let Some(due) = g.sched.open_due(now, opened) else {
                return;
            };
            let (target, src) = match &mut self.v6 {
                Some(v6) => (SocketAddr::V6(v6.target), v6.next_source()),
                None => (
                    SocketAddr::V4(g.cfg.target),
                    g.sched.sources.next_addr().map(IpAddr::V4),
                ),
            };
            let mut stream = match connect_from(src, target) {
                Ok(s) => s,
                Err(_) => {
                    // No local port or descriptor left: count it, try later.
                    self.stats.app_errors += 1;
                    return;
                }
            };
            if !self.register(&mut stream) {
                self.stats.app_errors += 1;
                return;
            }
            if let Some(g) = self.client.as_mut() {
                g.sched.opened();
            }
            opened += 1;
            self.stats.opened += 1;
            self.slot(Conn {
                sock: KernelSocket::new(stream),
                app: AppConn::Client(ClientConn::new(due)),
                connecting: true,
                told_fin: false,
                in_heap: Instant::NEVER,
            });
        }
    }
}

/// How often a core publishes its counters and looks at the stop flag.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

/// Serves until `stop` is set, publishing counters to `out`; then resets
/// what is still open.
pub fn serve(
    shard: &mut KernelShard,
    clock: &Clock,
    out: &crate::stats::Published,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<()> {
    let mut next_publish = clock.now();
    loop {
        shard.turn(clock, PUBLISH_EVERY)?;
        let now = clock.now();
        if now >= next_publish {
            next_publish = now + PUBLISH_EVERY;
            shard.count_states();
            out.store(&shard.stats);
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
        }
    }
    shard.abort_all(clock.now());
    shard.count_states();
    out.store(&shard.stats);
    Ok(())
}

/// A finished load run on one core.
pub struct ClientOutcome {
    pub stats: ShardStats,
    pub latency: Latency,
    /// The measured window's counts and length.
    pub measured: crate::app::window::Measured,
    /// One-second latency intervals (if asked for).
    pub intervals: Intervals,
}

fn counts(s: &KernelShard) -> crate::stats::report::Window {
    crate::stats::report::Window {
        completed: s.stats.completed,
        responses: s.stats.responses,
    }
}

/// Runs the load as the DPDK client does (`tools::load::drive`, the same
/// `MeasureWindow`): opens connections for `duration`, measures after
/// `warmup`, calls `each_second` with the counters, lets open connections
/// finish (5 s at most; 2 s after `stop`), resets what is left.
pub fn drive_client(
    shard: &mut KernelShard,
    clock: &Clock,
    client: ClientConfig,
    (duration, warmup): (Duration, Duration),
    stop: &std::sync::atomic::AtomicBool,
    record_intervals: bool,
    mut each_second: impl FnMut(&ShardStats),
) -> io::Result<ClientOutcome> {
    let start = clock.now();
    shard.start_client(client, start, duration, warmup);
    let mut window = crate::app::window::MeasureWindow::new(start, duration, warmup);
    let mut intervals = Intervals::default();
    if record_intervals {
        intervals.tick(start, &shard.latency);
    }
    loop {
        shard.turn(clock, Duration::from_millis(10))?;
        let now = clock.now();
        let stopping = stop.load(std::sync::atomic::Ordering::Relaxed);
        let turn = window.turn(now, counts(shard), stopping);
        if turn.second {
            shard.count_states();
            if record_intervals {
                intervals.tick(now, &shard.latency);
            }
            each_second(&shard.stats);
        }
        if turn.stop_client {
            shard.stop_client(now);
        }
        if window.done(now, shard.client_active()) {
            break;
        }
    }
    shard.abort_all(clock.now());
    shard.count_states();
    if record_intervals {
        intervals.tick(clock.now(), &shard.latency);
    }
    Ok(ClientOutcome {
        stats: shard.stats,
        latency: shard.latency.clone(),
        measured: window.measured(clock.now(), counts(shard)),
        intervals,
    })
}
