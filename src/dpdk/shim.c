/* Out-of-line copies of DPDK's static-inline functions, so Rust can call them. */
#include "shim.h"

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

/* Takes back mbufs we are done with (a received burst) to build frames in:
 * while `room` lasts, each direct, one-segment mbuf of `mp` is released as
 * rte_pktmbuf_free would (rte_pktmbuf_prefree_seg: NULL when another reference
 * still holds it) and, when it was the last reference, reset as
 * rte_pktmbuf_alloc would and stored in keep[]; the others are freed in bulk.
 * Returns how many were stored. pkts[] is used as scratch. */
unsigned sluice_pktmbuf_recycle(struct rte_mbuf **pkts, unsigned n, const struct rte_mempool *mp,
				struct rte_mbuf **keep, unsigned room)
{
	unsigned kept = 0, nfree = 0;

	for (unsigned i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];

		if (kept < room && m->pool == mp && m->nb_segs == 1 && RTE_MBUF_DIRECT(m)) {
			m = rte_pktmbuf_prefree_seg(m);
			if (m != NULL) {
				rte_pktmbuf_reset(m);
				keep[kept++] = m;
			}
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
