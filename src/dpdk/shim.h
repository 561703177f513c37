/* sluice's view of DPDK: the headers we bind, plus a C shim for DPDK's
 * static-inline fast-path functions (bindgen cannot bind inline functions). */
#ifndef SLUICE_SHIM_H
#define SLUICE_SHIM_H

#include <stdint.h>
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_ethdev.h>
#include <rte_eth_ring.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_devargs.h>
#include <rte_alarm.h>

uint16_t sluice_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
uint16_t sluice_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n);
struct rte_mbuf *sluice_pktmbuf_alloc(struct rte_mempool *mp);
int sluice_pktmbuf_alloc_bulk(struct rte_mempool *mp, struct rte_mbuf **mbufs, unsigned n);
void sluice_pktmbuf_free(struct rte_mbuf *m);
unsigned sluice_pktmbuf_recycle(struct rte_mbuf **pkts, unsigned n, struct rte_mempool *mp,
				struct rte_mbuf **keep, unsigned room);
uint16_t sluice_tx_burst_keep(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			      struct rte_mbuf **keep, unsigned room, unsigned *kept);
uint16_t sluice_tx_burst_lend(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n,
			      int *lent);
unsigned sluice_tx_reclaim(struct rte_mbuf **lent, unsigned n, struct rte_mbuf **keep,
			   unsigned room, unsigned *kept);
char *sluice_pktmbuf_append(struct rte_mbuf *m, uint16_t len);
int sluice_pktmbuf_trim(struct rte_mbuf *m, uint16_t len);
const char *sluice_dev_args(uint16_t port);
unsigned sluice_mempool_avail_count(const struct rte_mempool *mp);
unsigned sluice_lcore_id(void);
int sluice_errno(void);
uint64_t sluice_rdtsc(void);
uint64_t sluice_tsc_hz(void);

#endif
