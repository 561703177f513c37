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

/* Takes back mbufs we are done with (a received burst) to build frames in:
 * while `room` lasts, each direct, one-segment mbuf of `mp` whose only
 * reference this is (refcnt and nb_segs both 1, read as one word) is reset
 * as rte_pktmbuf_alloc would and stored in keep[]; the others (chained,
 * indirect or external, another pool's, still referenced elsewhere) are
 * freed in bulk, as rte_pktmbuf_free would. Returns how many were stored.
 * pkts[] is used as scratch. */
unsigned sluice_pktmbuf_recycle(struct rte_mbuf **pkts, unsigned n, struct rte_mempool *mp,
				struct rte_mbuf **keep, unsigned room)
{
	static const struct {
		uint16_t refcnt, nb_segs;
	} sole = {1, 1};
	const struct rearm rearm = rearm_for(mp);
	unsigned kept = 0, nfree = 0;

	RTE_BUILD_BUG_ON(offsetof(struct rte_mbuf, nb_segs) != offsetof(struct rte_mbuf, refcnt) + 2);
	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (kept < room && m->pool == mp && memcmp(&m->refcnt, &sole, sizeof(sole)) == 0 &&
		    RTE_MBUF_DIRECT(m)) {
			recycle_reset(m, &rearm);
			keep[kept++] = m;
		} else {
			pkts[nfree++] = m;
		}
	}
	if (nfree > 0)
		rte_pktmbuf_free_bulk(pkts, nfree);
	return kept;
}

char *sluice_pktmbuf_append(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_append(m, len);
}

int sluice_pktmbuf_trim(struct rte_mbuf *m, uint16_t len)
{
	return rte_pktmbuf_trim(m, len);
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
