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
int rct_skb_network_offset(const struct sk_buff *skb);

/* Per-CPU data. */
void __percpu *rct_alloc_percpu(size_t size, size_t align);
unsigned int rct_nr_cpu_ids(void);
bool rct_cpu_possible(unsigned int cpu);
void *rct_per_cpu_ptr(void __percpu *ptr, unsigned int cpu);
void rct_this_cpu_inc_u32(u32 __percpu *ptr);

/* The netns of a hook invocation. */
struct net *rct_hook_state_net(const struct nf_hook_state *state);

/* KUnit support: skbs built from bytes, and failures reported to the current test. */
struct sk_buff *rct_kunit_build_skb(const u8 *data, unsigned int len, unsigned int linear,
				    __be16 protocol);
void rct_kunit_free_skb(struct sk_buff *skb);
void rct_kunit_fail(struct kunit *test, const char *file, int line, const char *msg);

#endif /* _RUST_CONNTRACK_H */
