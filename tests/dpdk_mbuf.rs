//! The safe DPDK layer in-process: mbuf ownership (refused sends and received
//! packets go back to the pool; nothing leaks), append/trim and in-place
//! write + set_len bounds, bulk alloc, free and recycling, sent mbufs kept
//! from a device that copies them out (memif) and lent to a zero-copy one
//! (a memif client end), port statistics and device
//! info. One test function, because EAL can be initialised only
//! once per process.
#![cfg(feature = "dpdk")]

mod common;
use sluice::dpdk::{Eal, EalOptions, EthPort, Mbuf, MemoryMode, PktPool, PortConfig, ring_pair};

#[test]
fn mbufs_ports_and_stats() {
    if !common::is_root() {
        return common::skip("mbufs_ports_and_stats", "DPDK's EAL needs root here");
    }
    // A memif pair too (for `tx_burst_keep`), on a socket of this process's own.
    let sock = std::env::temp_dir().join(format!("sluice-mbuf-test-{}.sock", std::process::id()));
    let sock = sock.display();
    let eal = Eal::init(&EalOptions {
        memory: Some(MemoryMode::NoHuge { mb: 256 }),
        vdevs: vec![
            format!("net_memif0,role=server,id=0,socket={sock},socket-abstract=no"),
            format!("net_memif1,role=client,id=0,socket={sock},socket-abstract=no"),
            // And one whose client end runs zero-copy (`tx_burst_keep` lends).
            format!("net_memif2,role=server,id=1,socket={sock},socket-abstract=no,rsize=6"),
            format!(
                "net_memif3,role=client,id=1,socket={sock},socket-abstract=no,rsize=6,zero-copy=yes"
            ),
        ],
        ..EalOptions::default()
    })
    .expect("EAL init");
    assert!(
        Eal::init(&EalOptions::default()).is_err(),
        "EAL initialises only once"
    );

    // Cache size 0 so `available` is exact.
    let pool = PktPool::new("test_pool", 1023, 0, -1).expect("pool");
    assert_eq!(pool.available(), 1023);

    // Ownership and bounds of one mbuf.
    let mut m = Mbuf::alloc(&pool).expect("mbuf");
    assert_eq!(m.data_len(), 0);
    let room = m.tailroom();
    assert!(room >= 1514, "tailroom {room}");
    m.append(100)
        .expect("room for 100")
        .copy_from_slice(&[7u8; 100]);
    assert_eq!(m.data(), &[7u8; 100][..]);
    m.data_mut()[0] = 9;
    assert_eq!(m.data()[0], 9);
    assert!(
        m.append(room).is_none(),
        "append past the tailroom is refused"
    );
    assert_eq!(m.data_len(), 100, "a refused append changes nothing");
    assert!(m.trim(40));
    assert!(!m.trim(61));
    assert_eq!((m.data_len(), m.pkt_len(), m.segments()), (60, 60, 1));
    assert_eq!(pool.available(), 1022);
    drop(m);
    assert_eq!(pool.available(), 1023, "dropping an mbuf frees it");

    // A frame written in place, then its length set at once.
    let mut m = Mbuf::alloc(&pool).expect("mbuf");
    let room = m.tailroom();
    assert_eq!(m.tailroom_mut().len(), room);
    m.tailroom_mut()[..3].copy_from_slice(b"abc");
    m.set_len(3);
    assert_eq!((m.data(), m.data_len(), m.pkt_len()), (&b"abc"[..], 3, 3));
    assert_eq!(m.tailroom_mut().len(), room - 3, "the room after the data");
    m.tailroom_mut()[0] = b'd';
    m.set_len(4);
    assert_eq!(m.data(), b"abcd");
    m.set_len(1);
    assert_eq!(
        (m.data(), m.pkt_len()),
        (&b"a"[..], 1),
        "set_len shrinks too"
    );
    let whole = m.data_len() + m.tailroom();
    m.set_len(whole);
    assert_eq!(m.tailroom(), 0);
    assert!(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.set_len(whole + 1))).is_err(),
        "set_len past the buffer panics"
    );
    assert_eq!(m.data_len(), whole, "a refused set_len changes nothing");
    drop(m);
    assert_eq!(pool.available(), 1023);

    // Bulk: all or nothing from the pool, all back at once.
    let mut v = vec![Mbuf::alloc(&pool).expect("mbuf")];
    assert!(Mbuf::alloc_bulk(&pool, &mut v, 32));
    assert_eq!(v.len(), 33, "appended after what was there");
    assert!(v.iter().all(|m| m.data_len() == 0 && m.segments() == 1));
    assert_eq!(pool.available(), 1023 - 33);
    assert!(
        !Mbuf::alloc_bulk(&pool, &mut v, 1000),
        "more than the pool has: none"
    );
    assert_eq!((v.len(), pool.available()), (33, 1023 - 33));
    Mbuf::free_bulk(&mut v);
    assert!(v.is_empty());
    assert_eq!(pool.available(), 1023, "free_bulk gives them all back");
    Mbuf::free_bulk(&mut v);
    assert_eq!(pool.available(), 1023, "an empty free_bulk does nothing");

    // Recycling: used mbufs of the pool come back reset as fresh, up to the cap;
    // the rest, and those of another pool, are freed.
    let other = PktPool::new("test_other", 63, 0, -1).expect("other pool");
    let mut used: Vec<Mbuf> = (0..6u8)
        .map(|i| Mbuf::from_slice(&pool, &[i; 60]).expect("alloc"))
        .collect();
    used.push(Mbuf::from_slice(&other, &[9; 60]).expect("alloc"));
    let mut fresh = vec![Mbuf::alloc(&pool).expect("mbuf")];
    assert_eq!((pool.available(), other.available()), (1023 - 7, 62));
    Mbuf::recycle(&mut used, &pool, &mut fresh, 5);
    assert!(used.is_empty());
    assert_eq!(fresh.len(), 5, "kept up to the cap");
    assert_eq!(pool.available(), 1023 - 5, "the others went back");
    assert_eq!(other.available(), 63, "another pool's mbuf went back to it");
    for m in &fresh {
        assert_eq!((m.data_len(), m.pkt_len(), m.segments()), (0, 0, 1));
        assert_eq!(m.tailroom(), room, "the same room as a new mbuf");
    }
    Mbuf::recycle(&mut used, &pool, &mut fresh, 5);
    let mut more = vec![Mbuf::alloc(&pool).expect("mbuf")];
    Mbuf::recycle(&mut more, &pool, &mut fresh, 5);
    assert_eq!(
        (fresh.len(), pool.available()),
        (5, 1023 - 5),
        "full: freed"
    );
    drop(fresh);
    assert_eq!(pool.available(), 1023);
    drop(other);

    // Two ring ports back to back, rings of 64 slots (63 usable).
    let (a, b) = ring_pair("mbuf_test_a", "mbuf_test_b", 64).expect("ring pair");
    let cfg = PortConfig {
        rx_desc: 64,
        tx_desc: 64,
        ..PortConfig::default()
    };
    a.configure(&cfg, &pool).expect("configure a");
    b.configure(&cfg, &pool).expect("configure b");
    let mut qa = a.start(1).expect("start a").pop().unwrap();
    let mut qb = b.start(1).expect("start b").pop().unwrap();
    assert!(a.link().unwrap().up && b.link().unwrap().up);
    let info = a.info().expect("info");
    assert_eq!(info.driver, "net_ring");
    assert!(info.max_rx_queues >= 1 && info.max_tx_queues >= 1);
    assert_eq!(info.name, "net_ring_mbuf_test_a");
    assert_ne!(a.mac().unwrap(), b.mac().unwrap());

    let mut tx: Vec<Mbuf> = (0..200u32)
        .map(|i| Mbuf::from_slice(&pool, &i.to_be_bytes().repeat(16)).expect("alloc"))
        .collect();
    assert_eq!(pool.available(), 823);
    let sent = qa.tx_burst(&mut tx);
    assert_eq!(sent, 63, "the ring takes 63");
    assert_eq!(tx.len(), 137, "refused mbufs stay with the caller");
    // The refused ones are the tail, in order.
    assert_eq!(&tx[0].data()[..4], &63u32.to_be_bytes());
    drop(tx);
    assert_eq!(
        pool.available(),
        1023 - 63,
        "refused sends are freed on drop"
    );

    let mut rx = Vec::with_capacity(64);
    let got = qb.rx_burst(&mut rx, 64);
    assert_eq!(got, 63);
    for (i, m) in rx.iter().enumerate() {
        assert_eq!(
            m.data(),
            &(i as u32).to_be_bytes().repeat(16)[..],
            "packet {i}"
        );
    }
    drop(rx);
    assert_eq!(pool.available(), 1023, "received packets are freed on drop");

    let (sa, sb) = (a.stats().unwrap(), b.stats().unwrap());
    assert_eq!(sa.opackets, 63);
    assert_eq!(sb.ipackets, 63);

    // A ring port passes the mbufs themselves on: tx_burst_keep is tx_burst.
    let mut tx: Vec<Mbuf> = (0..3u8)
        .map(|i| Mbuf::from_slice(&pool, &[i; 60]).expect("alloc"))
        .collect();
    let mut fresh = vec![Mbuf::alloc(&pool).expect("mbuf")];
    assert_eq!(qa.tx_burst_keep(&mut tx, &mut fresh, 64), 3);
    assert_eq!((tx.len(), fresh.len()), (0, 1), "nothing comes back");
    let mut rx = Vec::with_capacity(64);
    assert_eq!(qb.rx_burst(&mut rx, 64), 3);
    drop((rx, fresh));
    assert_eq!(pool.available(), 1023);

    // A memif pair copies packets out: their mbufs come back as fresh ones.
    let (ms, mc) = (
        EthPort::by_name("net_memif0").expect("memif server"),
        EthPort::by_name("net_memif1").expect("memif client"),
    );
    ms.configure(&cfg, &pool).expect("configure memif server");
    mc.configure(&cfg, &pool).expect("configure memif client");
    let mut qs = ms.start(1).expect("start memif server").pop().unwrap();
    let mut qc = mc.start(1).expect("start memif client").pop().unwrap();
    let t0 = std::time::Instant::now();
    let mut rx = Vec::with_capacity(64);
    while !(ms.link().unwrap().up && mc.link().unwrap().up) {
        // The server sends only once the client has polled.
        qs.rx_burst(&mut rx, 64);
        qc.rx_burst(&mut rx, 64);
        assert!(t0.elapsed().as_secs() < 20, "the memif link came up");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // The server sends only into slots the client's receive side has
    // handed out, which it does when it polls.
    qc.rx_burst(&mut rx, 64);
    assert!(rx.is_empty());
    let base = pool.available();
    let mut fresh = vec![Mbuf::alloc(&pool).expect("mbuf")];
    fresh[0].tailroom_mut()[0] = 0xee; // a frame being built: stays last
    let mut tx: Vec<Mbuf> = (0..10u8)
        .map(|i| Mbuf::from_slice(&pool, &[i; 70]).expect("alloc"))
        .collect();
    assert_eq!(pool.available(), base - 11);
    assert_eq!(qs.tx_burst_keep(&mut tx, &mut fresh, 8), 10);
    assert!(tx.is_empty());
    assert_eq!(fresh.len(), 8, "sent mbufs come back up to the cap");
    assert_eq!(
        pool.available(),
        base - 8,
        "the rest of the sent mbufs went back to the pool"
    );
    assert_eq!(fresh[7].tailroom_mut()[0], 0xee, "the last one stayed last");
    for m in &fresh {
        assert_eq!((m.data_len(), m.pkt_len(), m.segments()), (0, 0, 1));
        assert_eq!(m.tailroom(), room, "as good as new");
    }
    let got = (0..1000)
        .map(|_| qc.rx_burst(&mut rx, 64))
        .find(|&n| n > 0)
        .unwrap_or(0);
    assert_eq!(got, 10, "the peer got them all");
    for (i, m) in rx.iter().enumerate() {
        assert_eq!(m.data(), &[i as u8; 70][..], "packet {i}");
    }
    rx.clear();
    // A kept mbuf carries a frame again, and is freed like any other.
    let m = fresh.last_mut().unwrap();
    m.tailroom_mut()[..5].copy_from_slice(b"again");
    m.set_len(5);
    let mut tx = vec![fresh.pop().unwrap()];
    assert_eq!(qs.tx_burst_keep(&mut tx, &mut fresh, 8), 1);
    let got = (0..1000)
        .map(|_| qc.rx_burst(&mut rx, 64))
        .find(|&n| n > 0)
        .unwrap_or(0);
    assert_eq!((got, rx[0].data()), (1, &b"again"[..]));
    drop((rx, fresh));
    assert_eq!(pool.available(), base, "every reference is given back once");
    ms.stop().unwrap();
    mc.stop().unwrap();
    mc.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    ms.close().unwrap();

    // A zero-copy memif client end hands its mbufs to the peer and frees
    // them once the peer is done: they come back as fresh ones then, at the
    // next transmit (the driver frees them there), not before.
    let zpool = PktPool::new("zc_pool", 1023, 0, -1).expect("pool");
    let (zs, zc) = (
        EthPort::by_name("net_memif2").expect("memif server"),
        EthPort::by_name("net_memif3").expect("memif client"),
    );
    assert!(zc.zero_copy() && !zs.zero_copy());
    zs.configure(&cfg, &zpool).expect("configure memif server");
    zc.configure(&cfg, &zpool).expect("configure memif client");
    let mut qs = zs.start(1).expect("start memif server").pop().unwrap();
    let mut qc = zc.start(1).expect("start memif client").pop().unwrap();
    let t0 = std::time::Instant::now();
    let mut rx = Vec::with_capacity(64);
    while !(zs.link().unwrap().up && zc.link().unwrap().up) {
        qs.rx_burst(&mut rx, 64);
        qc.rx_burst(&mut rx, 64);
        assert!(t0.elapsed().as_secs() < 20, "the memif link came up");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    assert!(rx.is_empty());
    let base = zpool.available();
    let mut fresh = vec![Mbuf::alloc(&zpool).expect("mbuf")];
    fresh[0].tailroom_mut()[0] = 0xee;
    let mut tx: Vec<Mbuf> = (0..10u8)
        .map(|i| Mbuf::from_slice(&zpool, &[i; 70]).expect("alloc"))
        .collect();
    assert_eq!(qc.tx_burst_keep(&mut tx, &mut fresh, 8), 10);
    assert!(tx.is_empty());
    assert_eq!(fresh.len(), 1, "the driver holds the sent mbufs");
    assert_eq!(zpool.available(), base - 11);
    let got = (0..1000)
        .map(|_| qs.rx_burst(&mut rx, 64))
        .find(|&n| n > 0)
        .unwrap_or(0);
    assert_eq!(got, 10, "the peer got them all");
    for (i, m) in rx.iter().enumerate() {
        assert_eq!(m.data(), &[i as u8; 70][..], "packet {i}");
    }
    rx.clear();
    assert_eq!(zpool.available(), base - 11, "the peer's copies are freed");
    // The next transmit: the driver frees the ten, which come back.
    let mut tx = vec![Mbuf::from_slice(&zpool, b"again").expect("alloc")];
    assert_eq!(qc.tx_burst_keep(&mut tx, &mut fresh, 8), 1);
    assert_eq!(fresh.len(), 8, "lent mbufs come back up to the cap");
    assert_eq!(
        zpool.available(),
        base - 9,
        "the rest went back to the pool; the new one is lent"
    );
    assert_eq!(fresh[7].tailroom_mut()[0], 0xee, "the last one stayed last");
    for m in &fresh[..7] {
        assert_eq!((m.data_len(), m.pkt_len(), m.segments()), (0, 0, 1));
        assert_eq!(m.tailroom(), room, "as good as new");
    }
    let got = (0..1000)
        .map(|_| qs.rx_burst(&mut rx, 64))
        .find(|&n| n > 0)
        .unwrap_or(0);
    assert_eq!((got, rx[0].data()), (1, &b"again"[..]));
    drop((rx, fresh));
    assert_eq!(zpool.available(), base - 1, "only the lent one is out");
    zc.stop().unwrap();
    drop(qc);
    zs.stop().unwrap();
    zc.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    zs.close().unwrap();
    drop(qs);
    drop(zpool);

    a.close().unwrap();
    b.close().unwrap();
    drop(pool);
    drop(eal);
    let _ = std::fs::remove_file(sock.to_string());
}
