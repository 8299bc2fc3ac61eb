// SPDX-License-Identifier: GPL-2.0
/*
 * C side of rust_conntrack: the pernet_operations table, and one-line wrappers
 * for static inline functions and macros that Rust cannot call. No logic lives
 * here; see rust_conntrack.rs.
 */
#include <rust_conntrack.h>
#include <net/netns/generic.h>

unsigned int rct_net_id __read_mostly;

struct rct_pernet {
	void *state;
	void *regs;
};

static int __net_init rct_pernet_init(struct net *net)
{
	return rct_net_init(net);
}

static void __net_exit rct_pernet_exit(struct net *net)
{
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

int rct_skb_network_offset(const struct sk_buff *skb)
{
	return skb_network_offset(skb);
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

void rct_this_cpu_inc_u32(u32 __percpu *ptr)
{
	this_cpu_inc(*ptr);
}

struct net *rct_hook_state_net(const struct nf_hook_state *state)
{
	return state->net;
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
