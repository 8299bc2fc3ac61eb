//! Tests of the `/proc/net/stat/rust_conntrack` rows.

use crate::proto::stat::*;

/// nf_conntrack 6.12's header (`ct_cpu_seq_show`), which ours must start with.
const NF_CONNTRACK_HEADER: &str = "entries  clashres found new invalid ignore delete \
chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create \
expect_delete search_restart";

#[test]
fn header_extends_nf_conntrack_header() {
    assert!(STAT_HEADER.starts_with(NF_CONNTRACK_HEADER));
    assert!(STAT_HEADER.ends_with('\n'));
    let extra: Vec<&str> = STAT_HEADER[NF_CONNTRACK_HEADER.len()..]
        .split_whitespace()
        .collect();
    assert_eq!(
        extra,
        [
            "in_pre_routing",
            "in_local_out",
            "helper_post_routing",
            "helper_local_in",
            "confirm_post_routing",
            "confirm_local_in",
            "unconfirmed_reaped",
            "unconfirmed"
        ]
    );
}

#[test]
fn row_has_one_field_per_header_column() {
    let mut s = String::new();
    write_stat_row(&mut s, 0, &[0; STAT_COUNT], 0).unwrap();
    assert_eq!(
        s.split_whitespace().count(),
        STAT_HEADER.split_whitespace().count()
    );
    assert!(s.ends_with('\n'));
}

#[test]
fn row_puts_each_counter_in_nf_conntrack_column() {
    // Give every counter a distinct value and read each back by its column name.
    let mut row = [0u32; STAT_COUNT];
    for (i, v) in row.iter_mut().enumerate() {
        *v = 0x100 + i as u32;
    }
    let mut s = String::new();
    write_stat_row(&mut s, 0xabc, &row, 0xdef).unwrap();
    let cols: Vec<&str> = STAT_HEADER.split_whitespace().collect();
    let vals: Vec<u32> = s
        .split_whitespace()
        .map(|v| u32::from_str_radix(v, 16).unwrap())
        .collect();
    let col = |name: &str| vals[cols.iter().position(|c| *c == name).unwrap()];
    assert_eq!(col("entries"), 0xabc);
    assert_eq!(col("unconfirmed"), 0xdef);
    for (name, stat) in [
        ("clashres", Stat::ClashResolve),
        ("found", Stat::Found),
        ("invalid", Stat::Invalid),
        ("chainlength", Stat::ChainTooLong),
        ("insert", Stat::Insert),
        ("insert_failed", Stat::InsertFailed),
        ("drop", Stat::Drop),
        ("early_drop", Stat::EarlyDrop),
        ("icmp_error", Stat::IcmpError),
        ("expect_new", Stat::ExpectNew),
        ("expect_create", Stat::ExpectCreate),
        ("expect_delete", Stat::ExpectDelete),
        ("search_restart", Stat::SearchRestart),
        ("in_pre_routing", Stat::InPreRouting),
        ("in_local_out", Stat::InLocalOut),
        ("helper_post_routing", Stat::HelperPostRouting),
        ("helper_local_in", Stat::HelperLocalIn),
        ("confirm_post_routing", Stat::ConfirmPostRouting),
        ("confirm_local_in", Stat::ConfirmLocalIn),
        ("unconfirmed_reaped", Stat::UnconfirmedReaped),
    ] {
        assert_eq!(col(name), row[stat as usize], "{name}");
    }
    // 6.12 prints these as constant zeros.
    for name in ["new", "ignore", "delete"] {
        assert_eq!(col(name), 0, "{name}");
    }
}

#[test]
fn row_layout_matches_nf_conntrack_spacing() {
    let mut s = String::new();
    write_stat_row(&mut s, 1, &[0; STAT_COUNT], 2).unwrap();
    let z = "00000000";
    let nf = format!("00000001  {z} {z} {z} {z} {z} {z} {z} {z} {z} {z} {z} {z}  {z} {z} {z} {z}");
    assert_eq!(s, format!("{nf}  {z} {z} {z} {z} {z} {z} {z} 00000002\n"));
}
