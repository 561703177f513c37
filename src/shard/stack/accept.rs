//! What listeners do with the segments `shard::route` gives them: a SYN opens
//! a connection in SYN-RECEIVED, past the half-open limit a SYN is answered
//! with a cookie (RFC 4987), a valid cookie's ACK opens an established
//! connection; a full table refuses by policy.

use super::{Conn, Stack, StackFamily, host_pair_cached};
use crate::app::{AppConn, ServerConn};
use crate::stats::DropReason;
use crate::table::{FlowKey, FullPolicy, Handle, InsertError, Place};
use crate::tcp::{Connection, TcpConfig, emit_cookie_syn_ack};
use crate::time::Instant;
use crate::wire::{SeqNumber, TcpRepr};

impl<A: StackFamily> Stack<A> {
    /// A SYN to the listener of application `app`: a new connection in
    /// SYN-RECEIVED, answering it.
    pub(super) fn accept_syn(&mut self, now: Instant, t: FlowKey<A>, seg: &TcpRepr, app: u16) {
        let pair = host_pair_cached(
            &mut self.host_pair,
            &self.hasher,
            t.local_host(),
            t.remote_host(),
        );
        let (iss, ts_offset) = (SeqNumber(pair.isn_of(&t, now)), pair.ts_offset());
        // Built where it will live: a control block is not small, and moving
        // it into the table costs copies; in a slot a connection ended in, in
        // place of that one, with its buffers.
        let listen = |cfg: &TcpConfig, old: Option<&mut Connection>| match old {
            Some(c) => {
                c.relisten_for(cfg, t, iss, now);
                None
            }
            None => Some(Connection::listen_for(cfg, t, iss, now)),
        };
        let Some(h) = self.accept(t, listen, app, true, seg) else {
            return;
        };
        let Some(c) = self.table.get_mut(h) else {
            return;
        };
        c.tcp.set_ts_offset(ts_offset);
        c.tcp
            .handle_segment(now, &self.cfg.tcp, &mut self.stats.tcp, seg);
    }

    /// SYN flood defence (RFC 4987): answer with the cookie, keep nothing.
    pub(super) fn send_cookie_syn_ack(&mut self, t: FlowKey<A>, seg: &TcpRepr, iss: SeqNumber) {
        let mut tcp = [0u8; 64];
        let n = emit_cookie_syn_ack(&self.cfg.tcp, t, seg, iss, &mut tcp);
        self.stats.syn_cookies_sent += 1;
        self.ctrl_tcp(t, &tcp[..n]);
        self.spend_syn_budget();
    }

    /// The ACK of a cookie SYN-ACK: the connection, established from it.
    pub(super) fn accept_cookie(
        &mut self,
        now: Instant,
        t: FlowKey<A>,
        seg: &TcpRepr,
        iss: SeqNumber,
        mss: u16,
    ) {
        let Some(&app) = self.table.listener(t.local()) else {
            return;
        };
        let cfg = &self.cfg.tcp;
        let mut c = Connection::from_syn_cookie(cfg, t, iss, seg, mss, now);
        c.handle_segment(now, cfg, &mut self.stats.tcp, seg);
        self.stats.syn_cookies_accepted += 1;
        self.verified_source(t.remote_host(), now);
        let cookie = |_: &TcpConfig, old: Option<&mut Connection>| match old {
            Some(o) => {
                *o = c;
                None
            }
            None => Some(c),
        };
        self.accept(t, cookie, app, false, seg);
    }

    /// A new server connection into the table, or its refusal (of `seg`);
    /// its handle if it was taken in. `tcp` renews the control block in place
    /// of one that ended in the slot (and gives `None`), or makes it.
    fn accept(
        &mut self,
        t: FlowKey<A>,
        tcp: impl FnOnce(&TcpConfig, Option<&mut Connection>) -> Option<Connection>,
        app: u16,
        half_open: bool,
        seg: &TcpRepr,
    ) -> Option<Handle> {
        let key = t;
        let cfg = &self.cfg.tcp;
        let mac = Some(self.peer_mac);
        let conn = |place: Place<'_, Conn<A>>| match place {
            Place::Empty(slot) => {
                if let Some(tcp) = tcp(cfg, None) {
                    // Driven this turn (pushed below once it is in).
                    *slot = Some(Conn::new(
                        tcp,
                        key,
                        AppConn::Server(ServerConn::new(app)),
                        half_open,
                        mac,
                    ));
                }
            }
            Place::Kept(c) => {
                let _ = tcp(cfg, Some(&mut c.tcp));
                c.app = AppConn::Server(ServerConn::new(app));
                c.renew(key, half_open, mac);
            }
        };
        match self.table.insert_in(key, conn) {
            Ok(h) => {
                self.stats.accepted += 1;
                if half_open {
                    self.half_open += 1;
                }
                self.touched.push(h);
                Some(h)
            }
            // Free a moment ago (no connection, no record): cannot happen.
            // Dropped, not reset: an RST would hit whoever holds the tuple.
            Err(InsertError::TupleTaken) => {
                self.stats.drop(DropReason::TupleTaken);
                None
            }
            Err(InsertError::Full { policy, .. }) => {
                self.stats.drop(DropReason::TableFull);
                if policy == FullPolicy::Rst {
                    // Refuse as CLOSED would (RFC 9293 3.10.7.1): the SYN gets
                    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>, which a
                    // SYN-SENT peer accepts; the cookie's ACK <SEQ=SEG.ACK><CTL=RST>.
                    self.send_rst_reply(t, seg);
                }
                None
            }
        }
    }
}
