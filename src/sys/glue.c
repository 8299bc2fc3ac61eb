// SPDX-License-Identifier: GPL-2.0
/*
 * C side of rust_conntrack: the pernet_operations table, and one-line wrappers
 * for static inline functions and macros that Rust cannot call. No logic lives
 * here; see rust_conntrack.rs.
 */
#include <rust_conntrack.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/prefetch.h>
#include <linux/netdevice.h>
#include <linux/random.h>
#include <linux/seqlock.h>
#include <linux/sysctl.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <net/net_namespace.h>
#include <net/netns/generic.h>
#include <net/netfilter/nf_conntrack.h>
#include <net/netfilter/nf_conntrack_helper.h>
#include <net/netfilter/nf_conntrack_seqadj.h>

unsigned int rct_net_id __read_mostly;

struct rct_pernet {
	void *state;
	void *regs;
	/* Reaps unconfirmed entries whose packet is gone; armed while any wait. */
	struct delayed_work sweep;
	struct net *net;
};

static void rct_sweep_work(struct work_struct *work)
{
	struct rct_pernet *p = container_of(to_delayed_work(work), struct rct_pernet, sweep);
	unsigned long next = rct_net_sweep(p->net);

	if (next)
		queue_delayed_work(system_power_efficient_wq, &p->sweep, next);
}

static int __net_init rct_pernet_init(struct net *net)
{
	struct rct_pernet *p = net_generic(net, rct_net_id);

	p->net = net;
	INIT_DELAYED_WORK(&p->sweep, rct_sweep_work);
	return rct_net_init(net);
}

static void __net_exit rct_pernet_exit(struct net *net)
{
	/* From here on the hooks' kicks queue nothing, and no sweep runs. */
	disable_delayed_work_sync(&((struct rct_pernet *)net_generic(net, rct_net_id))->sweep);
	rct_net_exit(net);
}

static struct pernet_operations rct_pernet_ops = {
	.init = rct_pernet_init,
	.exit = rct_pernet_exit,
	.id = &rct_net_id,
	.size = sizeof(struct rct_pernet),
};

int rct_register_pernet(void)
{
	return register_pernet_subsys(&rct_pernet_ops);
}

void rct_unregister_pernet(void)
{
	unregister_pernet_subsys(&rct_pernet_ops);
}

static struct rct_pernet *rct_pernet(const struct net *net)
{
	return net_generic(net, rct_net_id);
}

void *rct_net_state(const struct net *net)
{
	return READ_ONCE(rct_pernet(net)->state);
}

void rct_net_set_state(const struct net *net, void *state)
{
	WRITE_ONCE(rct_pernet(net)->state, state);
}

void rct_net_sweep_kick(const struct net *net, unsigned long delay)
{
	struct delayed_work *sweep = &rct_pernet(net)->sweep;

	/*
	 * Every new entry kicks, so the common case, already pending, is a plain read. The
	 * caller listed its entry under a list lock; a sweep that ran without seeing it had
	 * cleared PENDING (and its barrier) before taking that lock, so this read then sees it
	 * clear and queues the sweep again.
	 */
	if (delayed_work_pending(sweep))
		return;
	queue_delayed_work(system_power_efficient_wq, sweep, delay);
}

void *rct_net_regs(const struct net *net)
{
	return rct_pernet(net)->regs;
}

void rct_net_set_regs(const struct net *net, void *regs)
{
	rct_pernet(net)->regs = regs;
}

struct proc_dir_entry *rct_proc_net(const struct net *net)
{
	return net->proc_net;
}

struct proc_dir_entry *rct_proc_net_stat(const struct net *net)
{
	return net->proc_net_stat;
}

struct net *rct_seq_file_net(struct seq_file *seq)
{
	return seq_file_net(seq);
}

const void *rct_skb_header_pointer(const struct sk_buff *skb, int offset, int len, void *buffer)
{
	return skb_header_pointer(skb, offset, len, buffer);
}

unsigned int rct_skb_len(const struct sk_buff *skb)
{
	return skb->len;
}

void __percpu *rct_alloc_percpu(size_t size, size_t align)
{
	return __alloc_percpu(size, align);
}

unsigned int rct_nr_cpu_ids(void)
{
	return nr_cpu_ids;
}

bool rct_cpu_possible(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_possible(cpu);
}

void *rct_per_cpu_ptr(void __percpu *ptr, unsigned int cpu)
{
	return per_cpu_ptr(ptr, cpu);
}

/* this_cpu_inc(), for architectures percpu.rs has no inline increment for. */
void rct_this_cpu_inc_u32(u32 __percpu *ptr)
{
	this_cpu_inc(*ptr);
}

struct net *rct_hook_state_net(const struct nf_hook_state *state)
{
	return state->net;
}

void rct_hook_view(const struct sk_buff *skb, const struct nf_hook_state *state,
		   struct rct_hook_view *view)
{
	view->len = skb->len;
	view->nhoff = skb_network_offset(skb);
	view->in_loopback = state->in && (state->in->flags & IFF_LOOPBACK);
	view->out_loopback = state->out && (state->out->flags & IFF_LOOPBACK);
	view->jiffies = get_jiffies_64();
	view->hz = HZ;
}

bool rct_hook_out_loopback(const struct nf_hook_state *state)
{
	return state->out && (state->out->flags & IFF_LOOPBACK);
}

static void rct_nf_tuple_copy(struct rct_nf_tuple *to, const struct nf_conntrack_tuple *t)
{
	memcpy(to->src, &t->src.u3, sizeof(to->src));
	memcpy(to->dst, &t->dst.u3, sizeof(to->dst));
	memcpy(to->src_u, &t->src.u.all, sizeof(to->src_u));
	memcpy(to->dst_u, &t->dst.u.all, sizeof(to->dst_u));
	to->l3num = t->src.l3num;
	to->protonum = t->dst.protonum;
}

/*
 * Only reads: the skb holds a reference on its entry for as long as the caller
 * (a netfilter hook) has the skb. Templates and untracked packets have no tuples.
 */
bool rct_nfct_view(const struct sk_buff *skb, struct rct_nf_tuple *this_dir,
		   struct rct_nf_tuple *other_dir)
{
#if IS_ENABLED(CONFIG_NF_CONNTRACK)
	enum ip_conntrack_info ctinfo;
	const struct nf_conn *ct = nf_ct_get(skb, &ctinfo);
	enum ip_conntrack_dir dir;

	if (!ct || nf_ct_is_template(ct))
		return false;
	dir = CTINFO2DIR(ctinfo);
	rct_nf_tuple_copy(this_dir, &ct->tuplehash[dir].tuple);
	rct_nf_tuple_copy(other_dir, &ct->tuplehash[!dir].tuple);
	return true;
#else
	return false;
#endif
}

/*
 * The sequence adjustment of nf_conntrack's entry for the packet (nf_nat's helpers, when
 * they rewrite a payload to another length), the packet's direction first: false if there
 * is none. Read inline, so the module does not depend on nf_conntrack's symbols.
 */
bool rct_nfct_seqadj(const struct sk_buff *skb, struct rct_seqadj *this_dir,
		     struct rct_seqadj *other_dir)
{
#if IS_ENABLED(CONFIG_NF_CONNTRACK)
	enum ip_conntrack_info ctinfo;
	const struct nf_conn *ct = nf_ct_get(skb, &ctinfo);
	const struct nf_conn_seqadj *seqadj;
	enum ip_conntrack_dir dir;
	int i;

	if (!ct || nf_ct_is_template(ct) || !test_bit(IPS_SEQ_ADJUST_BIT, &ct->status))
		return false;
	seqadj = nfct_seqadj(ct);
	if (!seqadj)
		return false;
	dir = CTINFO2DIR(ctinfo);
	for (i = 0; i < 2; i++) {
		const struct nf_ct_seqadj *way = &seqadj->seq[i == 0 ? dir : !dir];
		struct rct_seqadj *out = i == 0 ? this_dir : other_dir;

		out->correction_pos = READ_ONCE(way->correction_pos);
		out->offset_before = READ_ONCE(way->offset_before);
		out->offset_after = READ_ONCE(way->offset_after);
	}
	return true;
#else
	return false;
#endif
}

/* Whether nf_conntrack's entry for the packet is translated and has a helper (RCU held). */
bool rct_nfct_nat_helper(const struct sk_buff *skb)
{
#if IS_ENABLED(CONFIG_NF_CONNTRACK)
	enum ip_conntrack_info ctinfo;
	const struct nf_conn *ct = nf_ct_get(skb, &ctinfo);
	const struct nf_conn_help *help;

	if (!ct || nf_ct_is_template(ct) || !(READ_ONCE(ct->status) & IPS_NAT_MASK))
		return false;
	help = nfct_help(ct);
	return help && rcu_access_pointer(help->helper);
#else
	return false;
#endif
}

void *rct_this_cpu_ptr(void __percpu *ptr)
{
	return this_cpu_ptr(ptr);
}

void rct_warn_table_full(void)
{
	net_warn_ratelimited("rust_conntrack: table full, dropping packet\n");
}

/*
 * nf_l4proto_log_invalid: 6.12 hands the packet to nf_log_packet with the prefix
 * "nf_ct_proto_%d: <msg> ", and nf_log_syslog prints it at KERN_NOTICE as
 * "<prefix>IN=<in> OUT=<out> ... SRC=... DST=... LEN=... PROTO=...". Rust formats the
 * prefix (head) and the packet's fields (tail); the devices are the hook state's.
 */
void rct_log_invalid(const struct nf_hook_state *state, const char *head, const char *tail)
{
	net_notice_ratelimited("rust_conntrack: %s IN=%s OUT=%s %s\n", head,
			       state->in ? state->in->name : "",
			       state->out ? state->out->name : "", tail);
}

bool rct_net_is_init(const struct net *net)
{
	return net_eq(net, &init_net);
}

/*
 * The sysctls under net/rust_conntrack: one handler for all. The kernel's own parser
 * (proc_dointvec or proc_douintvec, as 6.12's handler parses the value) reads and writes
 * the text through a temporary; Rust validates, converts and stores the value
 * (rct_sysctl_read and rct_sysctl_write, src/sys/sysctl.rs). .data is the netns' state,
 * which only Rust dereferences; .extra1 the sysctl's index; .extra2 non-NULL for an
 * unsigned value.
 */
static int rct_sysctl_handler(const struct ctl_table *table, int write, void *buffer,
			      size_t *lenp, loff_t *ppos)
{
	unsigned int index = (unsigned long)table->extra1;
	bool is_unsigned = table->extra2 != NULL;
	struct ctl_table tmp = *table;
	union {
		int i;
		unsigned int u;
	} val;
	long long v;
	int ret;

	/* As proc_dou8vec_minmax: the current value first, so that a write that parses
	 * nothing (at a non-zero position) stores it back unchanged. */
	ret = rct_sysctl_read(table->data, index, &v);
	if (ret)
		return ret;
	if (is_unsigned)
		val.u = (unsigned int)v;
	else
		val.i = (int)v;
	tmp.data = &val;
	tmp.maxlen = sizeof(val);
	if (is_unsigned)
		ret = proc_douintvec(&tmp, write, buffer, lenp, ppos);
	else
		ret = proc_dointvec(&tmp, write, buffer, lenp, ppos);
	if (ret || !write)
		return ret;
	return rct_sysctl_write(table->data, index, is_unsigned ? (long long)val.u : val.i);
}

struct ctl_table_header *rct_sysctl_register(struct net *net, const struct rct_sysctl_desc *descs,
					     unsigned int n, void *state)
{
	struct ctl_table_header *hdr;
	struct ctl_table *table;
	unsigned int i;

	table = kcalloc(n, sizeof(*table), GFP_KERNEL);
	if (!table)
		return NULL;
	for (i = 0; i < n; i++) {
		table[i].procname = descs[i].name;
		table[i].mode = descs[i].mode;
		table[i].maxlen = sizeof(int);
		table[i].data = state;
		table[i].proc_handler = rct_sysctl_handler;
		table[i].extra1 = (void *)(unsigned long)i;
		table[i].extra2 = descs[i].is_unsigned ? (void *)1 : NULL;
	}
	hdr = register_net_sysctl_sz(net, "net/rust_conntrack", table, n);
	if (!hdr)
		kfree(table);
	return hdr;
}

void rct_sysctl_unregister(struct ctl_table_header *hdr)
{
	const struct ctl_table *table = hdr->ctl_table_arg;

	/* Waits for running handlers. */
	unregister_net_sysctl_table(hdr);
	kfree(table);
}

void rct_warn_expect_table_full(void)
{
	net_warn_ratelimited("rust_conntrack: expectation table full\n");
}

/* nf_ct_helper_log, which goes through nf_log, printed directly: rate-limited. */
void rct_helper_log(const char *msg)
{
	net_info_ratelimited("rust_conntrack: %s\n", msg);
}

/* nf_conntrack_ftp's and nf_conntrack_tftp's ports=: up to 8 ports each. */
static unsigned short rct_ftp_ports[RCT_HELPER_MAX_PORTS];
static unsigned int rct_ftp_ports_c;
module_param_array_named(ftp_ports, rct_ftp_ports, ushort, &rct_ftp_ports_c, 0400);
MODULE_PARM_DESC(ftp_ports, "port numbers of FTP servers (default: 21)");
static unsigned short rct_tftp_ports[RCT_HELPER_MAX_PORTS];
static unsigned int rct_tftp_ports_c;
module_param_array_named(tftp_ports, rct_tftp_ports, ushort, &rct_tftp_ports_c, 0400);
MODULE_PARM_DESC(tftp_ports, "port numbers of TFTP servers (default: 69)");

/* nf_conntrack_ftp's loose: expect what a command names even if not its sender. */
static bool rct_ftp_loose;
module_param_named(ftp_loose, rct_ftp_loose, bool, 0600);
MODULE_PARM_DESC(ftp_loose, "FTP: expect the address a PORT names even if it is not the client's (default: off)");

bool rct_ftp_loose_param(void)
{
	return READ_ONCE(rct_ftp_loose);
}

void rct_helper_ports(u16 *ftp, u16 *tftp)
{
	memcpy(ftp, rct_ftp_ports, sizeof(rct_ftp_ports));
	memcpy(tftp, rct_tftp_ports, sizeof(rct_tftp_ports));
}

const u8 *rct_skb_tail(struct sk_buff *skb, unsigned int off, unsigned int *len)
{
	if (off > skb->len || skb_linearize(skb))
		return NULL;
	*len = skb->len - off;
	return skb->data + off;
}

void rct_rcu_read_lock(void)
{
	rcu_read_lock();
}

void rct_rcu_read_unlock(void)
{
	rcu_read_unlock();
}

/* Like nf_conntrack's hashsize: 0 picks the size from the memory size. */
static unsigned int rct_hashsize;
module_param_named(hashsize, rct_hashsize, uint, 0400);
MODULE_PARM_DESC(hashsize, "number of hash buckets (default: from memory size, as nf_conntrack)");

unsigned int rct_htable_size_param(void)
{
	return rct_hashsize;
}

unsigned long rct_totalram_pages(void)
{
	return totalram_pages();
}

struct rct_htable *rct_alloc_hashtable(unsigned int size, bool nowarn)
{
	gfp_t gfp = GFP_KERNEL | (nowarn ? __GFP_NOWARN : 0);
	struct rct_htable *table;
	unsigned int i;

	table = kmalloc(sizeof(*table), gfp);
	if (!table)
		return NULL;
	table->heads = kvcalloc(size, sizeof(*table->heads), gfp);
	if (!table->heads) {
		kfree(table);
		return NULL;
	}
	table->size = size;
	/* Each chain ends in its own bucket index, so a lookup can tell when a
	 * recycled entry (or a resize) led it into another chain. */
	for (i = 0; i < size; i++)
		INIT_HLIST_NULLS_HEAD(&table->heads[i], i);
	return table;
}

void rct_free_hashtable(struct rct_htable *table)
{
	kvfree(table->heads);
	kfree(table);
}

static spinlock_t rct_locks[RCT_LOCKS];
static siphash_aligned_key_t rct_hash_rnd;
/*
 * As nf_conntrack_locks_all_lock, nf_conntrack_locks_all and nf_conntrack_generation: a
 * resize takes every bucket lock at once (rct_all_lock) without holding 1024 spinlocks,
 * and bumps the generation around its move of the entries.
 */
static DEFINE_SPINLOCK(rct_locks_all_lock);
static bool rct_locks_all;
static seqcount_spinlock_t rct_generation;
/* As nf_conntrack_mutex: one resize at a time, and none during a netns' cleanup. */
static DEFINE_MUTEX(rct_table_mutex);

/* As nf_conntrack_init_start: before the first table, the locks and the hash key. */
void rct_tables_init_once(void)
{
	static DEFINE_MUTEX(init_mutex);
	static bool done;
	unsigned int i;

	mutex_lock(&init_mutex);
	if (!done) {
		seqcount_spinlock_init(&rct_generation, &rct_locks_all_lock);
		for (i = 0; i < RCT_LOCKS; i++)
			spin_lock_init(&rct_locks[i]);
		get_random_bytes(&rct_hash_rnd, sizeof(rct_hash_rnd));
		done = true;
	}
	mutex_unlock(&init_mutex);
}

unsigned int rct_generation_begin(void)
{
	return read_seqcount_begin(&rct_generation);
}

bool rct_generation_retry(unsigned int seq)
{
	return read_seqcount_retry(&rct_generation, seq);
}

/* For architectures without a prefetch of the module's own (see hlist_nulls.rs). */
void rct_prefetch(const void *p)
{
	prefetch(p);
}

/* nf_conntrack_lock: a bucket lock, after any rct_all_lock holder is done. */
static void rct_lock(spinlock_t *lock)
{
	spin_lock(lock);
	/* Pairs with the smp_store_release in rct_all_unlock. */
	if (likely(!smp_load_acquire(&rct_locks_all)))
		return;
	spin_unlock(lock);
	spin_lock(&rct_locks_all_lock);
	spin_lock(lock);
	spin_unlock(&rct_locks_all_lock);
}

/*
 * nf_conntrack_double_lock: the lower lock first, so two CPUs never wait on each other.
 * Returns true, with nothing locked, if the generation moved on from seq: the caller
 * computes its buckets again in the new table.
 */
bool rct_double_lock(unsigned int h1, unsigned int h2, unsigned int seq)
{
	h1 %= RCT_LOCKS;
	h2 %= RCT_LOCKS;
	if (h1 <= h2) {
		rct_lock(&rct_locks[h1]);
		if (h1 != h2)
			spin_lock_nested(&rct_locks[h2], SINGLE_DEPTH_NESTING);
	} else {
		rct_lock(&rct_locks[h2]);
		spin_lock_nested(&rct_locks[h1], SINGLE_DEPTH_NESTING);
	}
	if (read_seqcount_retry(&rct_generation, seq)) {
		rct_double_unlock(h1, h2);
		return true;
	}
	return false;
}

void rct_double_unlock(unsigned int h1, unsigned int h2)
{
	h1 %= RCT_LOCKS;
	h2 %= RCT_LOCKS;
	if (h1 != h2)
		spin_unlock(&rct_locks[h1]);
	spin_unlock(&rct_locks[h2]);
}

/*
 * nf_conntrack_all_lock, then write_seqcount_begin: every bucket lock holder gone, and
 * new ones waiting for rct_all_unlock. Bottom halves disabled by the caller.
 */
void rct_all_lock(void)
{
	unsigned int i;

	spin_lock(&rct_locks_all_lock);
	WRITE_ONCE(rct_locks_all, true);
	for (i = 0; i < RCT_LOCKS; i++) {
		spin_lock(&rct_locks[i]);
		/* The unlock makes rct_locks_all visible to the lock's next holder. */
		spin_unlock(&rct_locks[i]);
	}
	write_seqcount_begin(&rct_generation);
}

void rct_all_unlock(void)
{
	write_seqcount_end(&rct_generation);
	/* Everything done under the lock before rct_locks_all reads false. */
	smp_store_release(&rct_locks_all, false);
	spin_unlock(&rct_locks_all_lock);
}

void rct_table_mutex_lock(void)
{
	mutex_lock(&rct_table_mutex);
}

void rct_table_mutex_unlock(void)
{
	mutex_unlock(&rct_table_mutex);
}

void rct_synchronize_rcu(void)
{
	synchronize_rcu();
}

void rct_synchronize_net(void)
{
	synchronize_net();
}

/*
 * local_bh_disable, unless bottom halves are off already, as in a hook run from softirq:
 * nothing can then run softirqs or move the caller on this CPU either, and the costly half,
 * local_bh_enable, is saved. Returns whether it disabled them, for rct_local_bh_enable.
 */
bool rct_local_bh_disable(void)
{
	if (softirq_count())
		return false;
	local_bh_disable();
	return true;
}

void rct_local_bh_enable(bool disabled)
{
	if (disabled)
		local_bh_enable();
}

bool rct_bh_off(void)
{
	return softirq_count() != 0;
}

unsigned int rct_this_cpu_id(void)
{
	return raw_smp_processor_id();
}

/* hash_conntrack_raw: a keyed hash of the tuple, salted with the zone and the netns. */
u32 rct_hash(const void *key, unsigned int len, u32 zone, const struct net *net)
{
	siphash_key_t k = rct_hash_rnd;

	k.key[0] ^= zone;
	k.key[1] ^= net_hash_mix(net);
	return siphash(key, len, &k);
}

struct rct_pcpu_list __percpu *rct_pcpu_lists_alloc(unsigned long nulls)
{
	struct rct_pcpu_list __percpu *lists;
	int cpu;

	lists = alloc_percpu(struct rct_pcpu_list);
	if (!lists)
		return NULL;
	for_each_possible_cpu(cpu) {
		struct rct_pcpu_list *l = per_cpu_ptr(lists, cpu);

		spin_lock_init(&l->lock);
		INIT_HLIST_NULLS_HEAD(&l->head, nulls);
		l->count = 0;
	}
	return lists;
}

struct rct_pcpu_list *rct_pcpu_list_this(struct rct_pcpu_list __percpu *lists)
{
	return raw_cpu_ptr(lists);
}

bool rct_pcpu_list_lock(struct rct_pcpu_list *list)
{
	return rct_spin_lock_bh(&list->lock);
}

void rct_pcpu_list_unlock(struct rct_pcpu_list *list, bool bh)
{
	rct_spin_unlock_bh(&list->lock, bh);
}

struct kmem_cache *rct_cache_create(const char *name, unsigned int size, unsigned int align,
				    void (*ctor)(void *))
{
	return kmem_cache_create(name, size, align, SLAB_TYPESAFE_BY_RCU | SLAB_HWCACHE_ALIGN,
				 ctor);
}

void *rct_cache_alloc(struct kmem_cache *cache)
{
	return kmem_cache_alloc(cache, GFP_ATOMIC);
}

void rct_cache_free(struct kmem_cache *cache, void *obj)
{
	kmem_cache_free(cache, obj);
}

unsigned int rct_cache_object_size(struct kmem_cache *cache)
{
	return kmem_cache_size(cache);
}

/* spin_lock_bh, with bottom halves disabled only if they are on (rct_local_bh_disable). */
bool rct_spin_lock_bh(spinlock_t *lock)
{
	bool bh = rct_local_bh_disable();

	spin_lock(lock);
	return bh;
}

void rct_spin_unlock_bh(spinlock_t *lock, bool bh)
{
	spin_unlock(lock);
	rct_local_bh_enable(bh);
}

u32 rct_jiffies32(void)
{
	return (u32)jiffies;
}

u64 rct_ktime_ns(void)
{
	return ktime_get_ns();
}

u64 rct_ktime_real_ns(void)
{
	return ktime_get_real_ns();
}

u64 rct_jiffies64(void)
{
	return jiffies;
}

u32 rct_random_below(u32 ceil)
{
	return get_random_u32_below(ceil);
}

bool rct_l4_checksum_ok(struct sk_buff *skb, unsigned int hook, unsigned int dataoff,
			u8 protocol, u8 family, unsigned int len)
{
	if (len)
		return !nf_checksum_partial(skb, hook, dataoff, len, protocol, family);
	return !nf_checksum(skb, hook, dataoff, protocol, family);
}

bool rct_skb_csum_none(const struct sk_buff *skb)
{
	return skb->ip_summed == CHECKSUM_NONE;
}

unsigned int rct_hz(void)
{
	return HZ;
}

void rct_cond_resched(void)
{
	cond_resched();
}

void rct_sleep_jiffies(unsigned long j)
{
	schedule_timeout_uninterruptible(j);
}

/* One collector for the whole table, as nf_conntrack's gc_worker. */
static struct delayed_work rct_gc_dwork;
static bool rct_gc_exiting;
static bool rct_gc_running;
static void *rct_gc_ctx;
static unsigned long (*rct_gc_fn)(void *ctx);
static DEFINE_MUTEX(rct_gc_mutex);

static void rct_gc_work(struct work_struct *work)
{
	unsigned long next = rct_gc_fn(rct_gc_ctx);

	if (!READ_ONCE(rct_gc_exiting))
		queue_delayed_work(system_power_efficient_wq, &rct_gc_dwork, next);
}

int rct_gc_start(void *ctx, unsigned long (*run)(void *ctx))
{
	mutex_lock(&rct_gc_mutex);
	if (rct_gc_running) {
		mutex_unlock(&rct_gc_mutex);
		return -EBUSY;
	}
	rct_gc_running = true;
	rct_gc_ctx = ctx;
	rct_gc_fn = run;
	WRITE_ONCE(rct_gc_exiting, false);
	INIT_DELAYED_WORK(&rct_gc_dwork, rct_gc_work);
	queue_delayed_work(system_power_efficient_wq, &rct_gc_dwork, HZ);
	mutex_unlock(&rct_gc_mutex);
	return 0;
}

void rct_gc_stop(void)
{
	mutex_lock(&rct_gc_mutex);
	if (rct_gc_running) {
		WRITE_ONCE(rct_gc_exiting, true);
		cancel_delayed_work_sync(&rct_gc_dwork);
		rct_gc_running = false;
	}
	mutex_unlock(&rct_gc_mutex);
}

#if IS_ENABLED(CONFIG_KUNIT)
struct sk_buff *rct_kunit_build_skb(const u8 *data, unsigned int len, unsigned int linear,
				    __be16 protocol)
{
	struct sk_buff *skb;
	struct page *page;

	if (linear > len)
		linear = len;
	skb = alloc_skb(linear, GFP_KERNEL);
	if (!skb)
		return NULL;
	skb_put_data(skb, data, linear);
	if (len > linear) {
		/* The rest goes into a page fragment, as a NIC driver would put it. */
		if (len - linear > PAGE_SIZE) {
			kfree_skb(skb);
			return NULL;
		}
		page = alloc_page(GFP_KERNEL);
		if (!page) {
			kfree_skb(skb);
			return NULL;
		}
		memcpy(page_address(page), data + linear, len - linear);
		skb_add_rx_frag(skb, 0, page, 0, len - linear, PAGE_SIZE);
	}
	skb_reset_network_header(skb);
	skb->protocol = protocol;
	return skb;
}

void rct_kunit_free_skb(struct sk_buff *skb)
{
	kfree_skb(skb);
}

void rct_kunit_fail(struct kunit *test, const char *file, int line, const char *msg)
{
	KUNIT_FAIL(test, "%s:%d: %s", file, line, msg);
}
#endif
