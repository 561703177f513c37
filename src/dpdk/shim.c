/* Out-of-line copies of DPDK's static-inline functions, so Rust can call them. */
#include "shim.h"

#include <stddef.h>
#include <string.h>

uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n)
{
	return rte_pktmbuf_alloc_bulk(mp, mbufs, n);
}

void sluice_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/* What rte_pktmbuf_reset leaves in the four 16-bit fields from data_off to
 * port (the drivers' "rearm data") of a direct mbuf of `mp`: data_off the
 * headroom (at most the data room, which every mbuf of a pktmbuf pool has),
 * refcnt 1, nb_segs 1, no port. */
struct rearm {
	uint16_t data_off, refcnt, nb_segs, port;
};

static inline struct rearm rearm_for(struct rte_mempool *mp)
{
	const struct rearm r = {RTE_MIN((uint16_t)RTE_PKTMBUF_HEADROOM, rte_pktmbuf_data_room_size(mp)),
				1, 1, RTE_MBUF_PORT_INVALID};

	RTE_BUILD_BUG_ON(offsetof(struct rte_mbuf, refcnt) != offsetof(struct rte_mbuf, data_off) + 2);
	RTE_BUILD_BUG_ON(offsetof(struct rte_mbuf, nb_segs) != offsetof(struct rte_mbuf, data_off) + 4);
	RTE_BUILD_BUG_ON(offsetof(struct rte_mbuf, port) != offsetof(struct rte_mbuf, data_off) + 6);
	return r;
}

/* rte_pktmbuf_reset for a direct, one-segment mbuf whose only reference we
 * hold: the same values, the rearm data in one store. */
static inline void recycle_reset(struct rte_mbuf *m, const struct rearm *r)
{
	memcpy((char *)m + offsetof(struct rte_mbuf, data_off), r, sizeof(*r));
	m->next = NULL;
	m->ol_flags = 0; /* direct: no RTE_MBUF_F_EXTERNAL to keep */
	m->packet_type = 0;
	m->pkt_len = 0;
	m->data_len = 0;
	m->vlan_tci = 0;
	m->vlan_tci_outer = 0;
	m->tx_offload = 0;
}

/* Mbufs returned to the pool at a time by sluice_pktmbuf_recycle. */
#define RECYCLE_PUT 64

/* refcnt and nb_segs, adjacent, read as one word. */
static inline uint32_t refs_and_segs(const struct rte_mbuf *m)
{
	uint32_t w;

	RTE_BUILD_BUG_ON(offsetof(struct rte_mbuf, nb_segs) != offsetof(struct rte_mbuf, refcnt) + 2);
	memcpy(&w, &m->refcnt, sizeof(w));
	return w;
}

/* The word refs_and_segs reads for one reference and one segment. */
static inline uint32_t one_ref_one_seg(void)
{
	const struct {
		uint16_t refcnt, nb_segs;
	} sole = {1, 1};
	uint32_t w;

	memcpy(&w, &sole, sizeof(w));
	return w;
}

/* A direct, one-segment mbuf of `mp` whose only reference is ours: what
 * rte_pktmbuf_free would put back in `mp` as it is. */
static inline int sole_direct(const struct rte_mbuf *m, const struct rte_mempool *mp)
{
	return m->pool == mp && refs_and_segs(m) == one_ref_one_seg() && m->next == NULL &&
	       RTE_MBUF_DIRECT(m);
}

/* Takes back mbufs we are done with (a received burst) to build frames in:
 * while `room` lasts, each direct, one-segment mbuf of `mp` whose only
 * reference this is is reset as rte_pktmbuf_alloc would and stored in
 * keep[]; past `room`, such mbufs go straight back to `mp` (what
 * rte_pktmbuf_free would do for them, less its checks, which this one
 * made); the others (chained, indirect or external, another pool's, still
 * referenced elsewhere) are freed in bulk, as rte_pktmbuf_free would.
 * Returns how many were stored. pkts[] is used as scratch. */
unsigned sluice_pktmbuf_recycle(struct rte_mbuf **pkts, unsigned n, struct rte_mempool *mp,
				struct rte_mbuf **keep, unsigned room)
{
	const struct rearm rearm = rearm_for(mp);
	void *put[RECYCLE_PUT];
	unsigned i = 0, kept = 0, nfree = 0, nput = 0;

	for (; i < n && kept < room; i++) {
		struct rte_mbuf *m = pkts[i];

		if (sole_direct(m, mp)) {
			recycle_reset(m, &rearm);
			keep[kept++] = m;
		} else {
			pkts[nfree++] = m;
		}
	}
	for (; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (!sole_direct(m, mp)) {
			pkts[nfree++] = m;
			continue;
		}
		put[nput++] = m;
		if (nput == RECYCLE_PUT) {
			rte_mempool_put_bulk(mp, put, nput);
			nput = 0;
		}
	}
	if (nput > 0)
		rte_mempool_put_bulk(mp, put, nput);
	if (nfree > 0)
		rte_pktmbuf_free_bulk(pkts, nfree);
	return kept;
}

/* rte_eth_tx_burst for a device that is done with a packet when the call
 * returns (it copies the bytes out, then frees the mbuf: memif, af_packet,
 * tap), keeping a reference to each packet so that its mbuf comes back
 * instead of going to the pool: every one of pkts[0..n] (one-segment
 * mbufs whose only reference the caller holds) gets a second reference
 * for the driver, whose free then only drops that. After the call, while
 * `room` lasts, each sent mbuf whose only reference is ours again gets its
 * lengths back to 0 (the rest is as rte_pktmbuf_alloc left it: the caller
 * set only the lengths, these devices only read) and is stored in keep[];
 * our reference to the others is dropped (a device still holding one
 * frees it when done, as without this). The unsent ones are ours alone
 * again. A burst with a chained or shared mbuf is sent as is, nothing
 * kept. Returns how many were sent; *kept says how many were stored.
 * pkts[0..sent] is used as scratch. */
uint16_t sluice_tx_burst_keep(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			      struct rte_mbuf **keep, unsigned room, unsigned *kept)
{
	unsigned i, k = 0, nfree = 0;
	uint16_t sent;

	*kept = 0;
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (refs_and_segs(m) != one_ref_one_seg()) {
			/* Not as promised: no keeping for this burst. */
			for (unsigned j = 0; j < i; j++)
				rte_mbuf_refcnt_set(pkts[j], 1);
			return rte_eth_tx_burst(port, queue, pkts, n);
		}
		rte_mbuf_refcnt_set(m, 2);
	}
	sent = rte_eth_tx_burst(port, queue, pkts, n);
	for (i = sent; i < n; i++)
		rte_mbuf_refcnt_set(pkts[i], 1);
	/* A count of 1 read here means the device's free came before: what it
	 * did with the buffer is ordered before what we write next. */
	rte_atomic_thread_fence(__ATOMIC_ACQUIRE);
	for (i = 0; i < sent && k < room; i++) {
		struct rte_mbuf *m = pkts[i];

		if (rte_mbuf_refcnt_read(m) == 1) {
			m->pkt_len = 0;
			m->data_len = 0;
			keep[k++] = m;
		} else {
			pkts[nfree++] = m;
		}
	}
	for (; i < sent; i++)
		pkts[nfree++] = pkts[i];
	if (nfree > 0)
		rte_pktmbuf_free_bulk(pkts, nfree);
	*kept = k;
	return sent;
}

/* rte_eth_tx_burst for a device that holds each sent packet's mbuf until
 * its peer is done with it, then frees it (memif zero-copy), keeping a
 * reference of the caller's to each sent one: every one of pkts[0..n]
 * (one-segment mbufs whose only reference the caller holds) gets a second
 * reference for the driver, whose free then only drops that; the unsent
 * ones are the caller's alone again. *lent says the sent ones carry the
 * caller's reference (sluice_tx_reclaim takes them back once the driver's
 * is gone); a burst with a chained, shared, indirect or external mbuf is
 * sent as is (*lent 0).
 * Returns how many were sent. */
uint16_t sluice_tx_burst_lend(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			      int *lent)
{
	unsigned i;
	uint16_t sent;

	*lent = 0;
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (refs_and_segs(m) != one_ref_one_seg() || !RTE_MBUF_DIRECT(m)) {
			for (unsigned j = 0; j < i; j++)
				rte_mbuf_refcnt_set(pkts[j], 1);
			return rte_eth_tx_burst(port, queue, pkts, n);
		}
		rte_mbuf_refcnt_set(m, 2);
	}
	sent = rte_eth_tx_burst(port, queue, pkts, n);
	for (i = sent; i < n; i++)
		rte_mbuf_refcnt_set(pkts[i], 1);
	*lent = 1;
	return sent;
}

/* Takes back, from the front of lent[0..n] (mbufs sent by
 * sluice_tx_burst_lend, in the order sent, each with one reference of the
 * caller's), those whose driver reference is gone, stopping at the first
 * still held: while `room` lasts each gets its lengths back to 0 (the rest
 * is as rte_pktmbuf_alloc left it) and is stored in keep[]; past it, it is
 * freed. Returns how many were taken (lent[0..taken], no longer the
 * caller's); *kept says how many were stored. */
unsigned sluice_tx_reclaim(struct rte_mbuf **lent, unsigned n, struct rte_mbuf **keep,
			   unsigned room, unsigned *kept)
{
	unsigned i, k;

	for (i = 0; i < n && rte_mbuf_refcnt_read(lent[i]) == 1; i++)
		;
	/* A count of 1 read here means the driver's free came before: what it
	 * (and the peer) did with the buffer is ordered before what we write. */
	rte_atomic_thread_fence(__ATOMIC_ACQUIRE);
	k = i < room ? i : room;
	for (unsigned j = 0; j < k; j++) {
		struct rte_mbuf *m = lent[j];

		m->pkt_len = 0;
		m->data_len = 0;
		keep[j] = m;
	}
	/* The others go straight back to their pool: direct, one segment, our
	 * reference the only one (sluice_tx_burst_lend checked), they are what
	 * rte_pktmbuf_free would put there as they are. */
	for (unsigned j = k; j < i;) {
		struct rte_mempool *mp = lent[j]->pool;
		unsigned e = j + 1;

		while (e < i && lent[e]->pool == mp)
			e++;
		rte_mempool_put_bulk(mp, (void **)(lent + j), e - j);
		j = e;
	}
	*kept = k;
	return i;
}

char *sluice_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

int sluice_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
}

/* The driver arguments the port's device was created with (a vdev's
 * "role=client,zero-copy=yes,..."), "" when none or no such port. */
const char *sluice_dev_args(uint16_t port)
{
	struct rte_eth_dev_info info;
	const struct rte_devargs *da;

	if (rte_eth_dev_info_get(port, &info) != 0 || info.device == NULL)
		return "";
	da = rte_dev_devargs(info.device);
	return da != NULL && da->args != NULL ? da->args : "";
}

unsigned sluice_mempool_avail_count(const struct rte_mempool *mp)
{
	return rte_mempool_avail_count(mp);
}

unsigned sluice_lcore_id(void)
{
	return rte_lcore_id();
}

int sluice_errno(void)
{
	return rte_errno;
}

uint64_t sluice_rdtsc(void)
{
	return rte_rdtsc();
}

uint64_t sluice_tsc_hz(void)
{
	return rte_get_tsc_hz();
}
