/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C API rust_conntrack uses: bindgen reads this header to generate the
 * module's bindings, and src/glue.c implements the rct_* helpers declared
 * here for static inline functions and macros Rust cannot call directly.
 */
#ifndef _RUST_CONNTRACK_H
#define _RUST_CONNTRACK_H

#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/percpu.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/seq_file_net.h>
#include <linux/skbuff.h>
#include <net/net_namespace.h>
#include <net/netfilter/ipv4/nf_defrag_ipv4.h>
#include <net/netfilter/ipv6/nf_defrag_ipv6.h>
#include <linux/rculist_nulls.h>
#include <linux/siphash.h>
#include <linux/slab.h>
#include <kunit/test.h>

/*
 * Pernet registration. Each netns has two slots: the state that hooks and /proc
 * read (published before the hooks are registered, so they never see it missing)
 * and the registrations that undo themselves at netns exit.
 */
extern unsigned int rct_net_id;
int rct_register_pernet(void);
void rct_unregister_pernet(void);
void *rct_net_state(const struct net *net);
void rct_net_set_state(const struct net *net, void *state);
void *rct_net_regs(const struct net *net);
void rct_net_set_regs(const struct net *net, void *regs);
/* Implemented in Rust. */
int rct_net_init(struct net *net);
void rct_net_exit(struct net *net);

/* Per-netns /proc directories. */
struct proc_dir_entry *rct_proc_net(const struct net *net);
struct proc_dir_entry *rct_proc_net_stat(const struct net *net);
struct net *rct_seq_file_net(struct seq_file *seq);

/* skb access. */
const void *rct_skb_header_pointer(const struct sk_buff *skb, int offset, int len, void *buffer);
unsigned int rct_skb_len(const struct sk_buff *skb);

/* Per-CPU data. */
void __percpu *rct_alloc_percpu(size_t size, size_t align);
unsigned int rct_nr_cpu_ids(void);
bool rct_cpu_possible(unsigned int cpu);
void *rct_per_cpu_ptr(void __percpu *ptr, unsigned int cpu);
void rct_this_cpu_inc_u32(u32 __percpu *ptr);

/* The netns of a hook invocation. */
struct net *rct_hook_state_net(const struct nf_hook_state *state);

/* RCU read-side sections (the hlist_nulls operations are in Rust, src/sys/hlist_nulls.rs). */
void rct_rcu_read_lock(void);
void rct_rcu_read_unlock(void);

/* The hash table: buckets, striped bucket locks (as nf_conntrack_locks), hashing. */
#define RCT_LOCKS 1024
/* A bucket array: its size and its chain heads, chain i ending in nulls value i. */
struct rct_htable {
	unsigned int size;
	struct hlist_nulls_head *heads;
};
struct rct_htable *rct_alloc_hashtable(unsigned int size, bool nowarn);
void rct_free_hashtable(struct rct_htable *table);
unsigned int rct_htable_size_param(void);
unsigned long rct_totalram_pages(void);
/* Initialises the bucket locks and the hash key, the first time only. Process context. */
void rct_tables_init_once(void);
/* The generation (nf_conntrack_generation): odd while a resize moves the entries. */
unsigned int rct_generation_begin(void);
bool rct_generation_retry(unsigned int seq);
/* prefetch(p): a hint that p will be read soon; never faults (x86 uses its own, inline). */
void rct_prefetch(const void *p);
/* Locks two buckets' stripes; true (nothing locked) if the generation is no longer seq. */
bool rct_double_lock(unsigned int h1, unsigned int h2, unsigned int seq);
void rct_double_unlock(unsigned int h1, unsigned int h2);
/* Every bucket lock at once, and the generation's write section; bottom halves off. */
void rct_all_lock(void);
void rct_all_unlock(void);
/* One resize at a time, none during a netns' cleanup (nf_conntrack_mutex). */
void rct_table_mutex_lock(void);
void rct_table_mutex_unlock(void);
void rct_synchronize_net(void);
void rct_synchronize_rcu(void);
/* Bottom halves off, if they are not already; returns whether they were turned off here. */
bool rct_local_bh_disable(void);
void rct_local_bh_enable(bool disabled);
/* Whether bottom halves are off on this CPU (softirq_count()), for KUnit. */
bool rct_bh_off(void);
/* The running CPU (raw_smp_processor_id()), for KUnit. */
unsigned int rct_this_cpu_id(void);
u32 rct_hash(const void *key, unsigned int len, u32 zone, const struct net *net);

/* Per-CPU unconfirmed lists: a lock and a list per CPU. */
struct rct_pcpu_list {
	spinlock_t lock;
	struct hlist_nulls_head head;
	/* Entries listed, changed under the lock. */
	unsigned int count;
};
struct rct_pcpu_list __percpu *rct_pcpu_lists_alloc(unsigned long nulls);
struct rct_pcpu_list *rct_pcpu_list_this(struct rct_pcpu_list __percpu *lists);
bool rct_pcpu_list_lock(struct rct_pcpu_list *list);
void rct_pcpu_list_unlock(struct rct_pcpu_list *list, bool bh);

/* Entries come from a slab cache of their own, SLAB_TYPESAFE_BY_RCU like nf_conn's. */
struct kmem_cache *rct_cache_create(const char *name, unsigned int size, unsigned int align,
				    void (*ctor)(void *));
void *rct_cache_alloc(struct kmem_cache *cache);
void rct_cache_free(struct kmem_cache *cache, void *obj);
unsigned int rct_cache_object_size(struct kmem_cache *cache);

/*
 * Spinlocks taken with bottom halves disabled (the per-entry lock, ct->lock); the lock
 * returns whether it disabled them, which the unlock undoes.
 */
bool rct_spin_lock_bh(spinlock_t *lock);
void rct_spin_unlock_bh(spinlock_t *lock, bool bh);

/* Time and scheduling. */
u32 rct_jiffies32(void);
u64 rct_ktime_ns(void);
u64 rct_ktime_real_ns(void);
u64 rct_jiffies64(void);
u32 rct_random_below(u32 ceil);
unsigned int rct_hz(void);
void rct_cond_resched(void);
void rct_sleep_jiffies(unsigned long j);

/* The garbage collector's deferred work: run(ctx) returns the next delay. -EBUSY if started. */
int rct_gc_start(void *ctx, unsigned long (*run)(void *ctx));
void rct_gc_stop(void);

/* Transport checksums, verified as nf_conntrack does (len 0: the whole packet). */
bool rct_l4_checksum_ok(struct sk_buff *skb, unsigned int hook, unsigned int dataoff,
			u8 protocol, u8 family, unsigned int len);
/* skb->ip_summed == CHECKSUM_NONE: SCTP verifies its CRC32c only then, as sctp_error. */
bool rct_skb_csum_none(const struct sk_buff *skb);

/*
 * What a hook needs of its skb and state, read in one call: the skb's length, the
 * network header's offset, the devices' loopback flags and the clock.
 */
struct rct_hook_view {
	unsigned int len;
	int nhoff;
	bool in_loopback;
	bool out_loopback;
	u64 jiffies;
	unsigned int hz;
};
void rct_hook_view(const struct sk_buff *skb, const struct nf_hook_state *state,
		   struct rct_hook_view *view);
/* The packet leaves through a loopback device (the view's out_loopback alone). */
bool rct_hook_out_loopback(const struct nf_hook_state *state);

/* Per-netns sweep of unconfirmed entries: Rust's rct_net_sweep returns the next delay, or 0. */
unsigned long rct_net_sweep(struct net *net);
void rct_net_sweep_kick(const struct net *net, unsigned long delay);

/*
 * nf_conntrack's entry for a packet, read from skb->_nfct and never written: the
 * tuples of the packet's direction and of the other one, as nf_nat left them.
 */
struct rct_nf_tuple {
	u8 src[16];
	u8 dst[16];
	u8 src_u[2];
	u8 dst_u[2];
	u16 l3num;
	u8 protonum;
};
bool rct_nfct_view(const struct sk_buff *skb, struct rct_nf_tuple *this_dir,
		   struct rct_nf_tuple *other_dir);
struct rct_seqadj {
	u32 correction_pos;
	s32 offset_before;
	s32 offset_after;
};
bool rct_nfct_seqadj(const struct sk_buff *skb, struct rct_seqadj *this_dir,
		     struct rct_seqadj *other_dir);
bool rct_nfct_nat_helper(const struct sk_buff *skb);

/* Per-CPU data used only with bottom halves disabled. */
void *rct_this_cpu_ptr(void __percpu *ptr);
void rct_warn_table_full(void);
/* An invalid packet, as nf_l4proto_log_invalid logs it (rate-limited). */
void rct_log_invalid(const struct nf_hook_state *state, const char *head, const char *tail);
bool rct_net_is_init(const struct net *net);

/*
 * The sysctls under net/rust_conntrack, per netns: one descriptor each (index = position),
 * read and written through Rust (implemented in src/sys/sysctl.rs; 0 or -errno).
 */
struct rct_sysctl_desc {
	const char *name;
	unsigned short mode;
	bool is_unsigned;
};
struct ctl_table_header;
struct ctl_table_header *rct_sysctl_register(struct net *net, const struct rct_sysctl_desc *descs,
					     unsigned int n, void *state);
void rct_sysctl_unregister(struct ctl_table_header *hdr);
int rct_sysctl_read(void *state, unsigned int index, long long *val);
int rct_sysctl_write(void *state, unsigned int index, long long val);
void rct_warn_expect_table_full(void);
void rct_helper_log(const char *msg);

/* Helpers: the ports of the ftp_ports= and tftp_ports= parameters, RCT_HELPER_MAX_PORTS each. */
#define RCT_HELPER_MAX_PORTS 8
void rct_helper_ports(u16 *ftp, u16 *tftp);
bool rct_ftp_loose_param(void);

/* The packet's bytes from off to its end, linear (skb_linearize); NULL if that fails. */
const u8 *rct_skb_tail(struct sk_buff *skb, unsigned int off, unsigned int *len);

/* KUnit support: skbs built from bytes, and failures reported to the current test. */
struct sk_buff *rct_kunit_build_skb(const u8 *data, unsigned int len, unsigned int linear,
				    __be16 protocol);
void rct_kunit_free_skb(struct sk_buff *skb);
void rct_kunit_fail(struct kunit *test, const char *file, int line, const char *msg);

#endif /* _RUST_CONNTRACK_H */
