//! `--pcap FILE`: the first N frames a shard receives and sends, in the
//! classic pcap format (Ethernet link type) that tcpdump, tshark and
//! Wireshark read. Capturing costs a clock read and a buffered write per
//! frame, and nothing once the limit is reached.

use super::nic::Nic;
use std::io::{self, BufWriter, Write};
use std::time::SystemTime;

/// A pcap file being written.
pub struct PcapWriter {
    out: BufWriter<std::fs::File>,
    left: u64,
    pub written: u64,
}

impl PcapWriter {
    /// Creates `path` for at most `limit` frames.
    pub fn create(path: &str, limit: u64) -> io::Result<PcapWriter> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        // Global header: magic, version 2.4, GMT offset 0, accuracy 0,
        // snapshot length, link type 1 (Ethernet).
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&65_535u32.to_le_bytes())?;
        out.write_all(&1u32.to_le_bytes())?;
        Ok(PcapWriter {
            out,
            left: limit,
            written: 0,
        })
    }

    /// Records one frame (until the limit).
    pub fn frame(&mut self, f: &[u8]) {
        if self.left == 0 {
            return;
        }
        self.left -= 1;
        let t = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let len = f.len().min(65_535) as u32;
        let ok = self
            .out
            .write_all(&(t.as_secs() as u32).to_le_bytes())
            .and_then(|_| self.out.write_all(&t.subsec_micros().to_le_bytes()))
            .and_then(|_| self.out.write_all(&len.to_le_bytes()))
            .and_then(|_| self.out.write_all(&(f.len() as u32).to_le_bytes()))
            .and_then(|_| self.out.write_all(&f[..len as usize]));
        match ok {
            Ok(()) => self.written += 1,
            Err(_) => self.left = 0, // disk full or gone: stop capturing
        }
        if self.left == 0 {
            let _ = self.out.flush();
        }
    }

    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

/// A NIC whose frames (both ways) are also written to a pcap file.
pub struct CapturedNic<N> {
    pub inner: N,
    pub pcap: Option<PcapWriter>,
}

impl<N: Nic> CapturedNic<N> {
    pub fn new(inner: N, pcap: Option<PcapWriter>) -> CapturedNic<N> {
        CapturedNic { inner, pcap }
    }
}

impl<N: Nic> Nic for CapturedNic<N> {
    fn rx(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        match &mut self.pcap {
            Some(p) if p.left > 0 => self.inner.rx(&mut |frame| {
                p.frame(frame);
                f(frame)
            }),
            _ => self.inner.rx(f),
        }
    }

    fn tx_buf(&mut self, max: usize) -> Option<&mut [u8]> {
        self.inner.tx_buf(max)
    }

    fn tx_commit(&mut self, len: usize) {
        if let Some(p) = &mut self.pcap {
            // Until the commit, `tx_buf` hands out the frame as written.
            if p.left > 0 {
                if let Some(buf) = self.inner.tx_buf(len) {
                    p.frame(buf);
                }
            }
        }
        self.inner.tx_commit(len);
    }

    fn flush(&mut self) -> u64 {
        self.inner.flush()
    }

    fn tx_pending(&self) -> usize {
        self.inner.tx_pending()
    }
}
