// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit suites of rust_conntrack. Linux 6.12 has no #[kunit_tests] for Rust, so
 * the suites are declared here and every case is a Rust function (mod.rs).
 * They run when rust_conntrack_test.ko loads; results go to the kernel log as KTAP.
 */
#include <kunit/test.h>

#define RCT_CASE(name)                         \
	void rct_kunit_##name(struct kunit *test); \
	static void name(struct kunit *test)       \
	{                                          \
		rct_kunit_##name(test);            \
	}

RCT_CASE(skb_ipv4_udp_linear)
RCT_CASE(skb_ipv6_tcp_paged)
RCT_CASE(skb_ipv4_icmp_split_everywhere)
RCT_CASE(skb_malformed)
RCT_CASE(percpu_counters_sum)
RCT_CASE(bh_locks_leave_bh_as_found)
RCT_CASE(hooks_count_per_hook)
RCT_CASE(hooks_count_invalid)
RCT_CASE(init_net_has_state)
RCT_CASE(table_insert_lookup_delete)
RCT_CASE(unconfirmed_then_confirmed)
RCT_CASE(clash_resolution)
RCT_CASE(handoff_rejects_other_packets)
RCT_CASE(loopback_skips_only_what_left_on_lo)
RCT_CASE(nulls_restart)
RCT_CASE(gc_reaps_expired)
RCT_CASE(gc_early_drops_under_pressure)
RCT_CASE(early_drop_unassured_only)
RCT_CASE(early_drop_whole_bucket)
RCT_CASE(full_table_drops)
RCT_CASE(tcp_close_and_reopen)
RCT_CASE(established_path_cost)
RCT_CASE(expectation_life)
RCT_CASE(entry_widths)
RCT_CASE(acct_and_timestamps)
RCT_CASE(table_resize)
RCT_CASE(acct_clash_merge)

static struct kunit_case rct_skb_cases[] = {
	KUNIT_CASE(skb_ipv4_udp_linear),
	KUNIT_CASE(skb_ipv6_tcp_paged),
	KUNIT_CASE(skb_ipv4_icmp_split_everywhere),
	KUNIT_CASE(skb_malformed),
	{}
};

static struct kunit_suite rct_skb_suite = {
	.name = "rust_conntrack_skb",
	.test_cases = rct_skb_cases,
};

static struct kunit_case rct_core_cases[] = {
	KUNIT_CASE(percpu_counters_sum),
	KUNIT_CASE(bh_locks_leave_bh_as_found),
	KUNIT_CASE(hooks_count_per_hook),
	KUNIT_CASE(hooks_count_invalid),
	KUNIT_CASE(init_net_has_state),
	{}
};

static struct kunit_suite rct_core_suite = {
	.name = "rust_conntrack_core",
	.test_cases = rct_core_cases,
};

static struct kunit_case rct_table_cases[] = {
	KUNIT_CASE(table_insert_lookup_delete),
	KUNIT_CASE(unconfirmed_then_confirmed),
	KUNIT_CASE(clash_resolution),
	KUNIT_CASE(handoff_rejects_other_packets),
	KUNIT_CASE(loopback_skips_only_what_left_on_lo),
	KUNIT_CASE(nulls_restart),
	KUNIT_CASE(gc_reaps_expired),
	KUNIT_CASE(gc_early_drops_under_pressure),
	KUNIT_CASE(early_drop_unassured_only),
	KUNIT_CASE(early_drop_whole_bucket),
	KUNIT_CASE(full_table_drops),
	KUNIT_CASE(tcp_close_and_reopen),
	KUNIT_CASE(established_path_cost),
	KUNIT_CASE(expectation_life),
	KUNIT_CASE(entry_widths),
	KUNIT_CASE(acct_and_timestamps),
	KUNIT_CASE(table_resize),
	KUNIT_CASE(acct_clash_merge),
	{}
};

static struct kunit_suite rct_table_suite = {
	.name = "rust_conntrack_table",
	.test_cases = rct_table_cases,
};

kunit_test_suites(&rct_skb_suite, &rct_core_suite, &rct_table_suite);
