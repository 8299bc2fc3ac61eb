// SPDX-License-Identifier: GPL-2.0

//! Connection tracking helpers: the registry, their assignment by port, and what a helper
//! asks of the core for one packet.
//!
//! C source: [`net/netfilter/nf_conntrack_helper.c`](srctree/net/netfilter/nf_conntrack_helper.c)
//! (`nf_ct_helper_init`, `__nf_ct_helper_find`),
//! [`net/netfilter/nf_conntrack_ftp.c`](srctree/net/netfilter/nf_conntrack_ftp.c) and
//! [`net/netfilter/nf_conntrack_tftp.c`](srctree/net/netfilter/nf_conntrack_tftp.c) (their
//! policies and ports).
//!
//! 6.12 attaches helpers only through rules (`ct helper set`), which bind nf_conntrack's own
//! helpers. This module attaches them by port, as nf_conntrack did with
//! `nf_conntrack_helper=1`: a new connection (not an expected one) whose original destination
//! port is one of a helper's ports (module parameters `ftp_ports=`, `tftp_ports=`) gets that
//! helper, unless the netns turned automatic assignment off.

use crate::proto::conn::CtInfo;
use crate::proto::expect::{expectation, ExpectPolicy, Expectation, NF_CT_EXPECT_CLASS_DEFAULT};
use crate::proto::handoff::{handoff, Handoff};
use crate::proto::helper_ftp::{self, FtpOutcome, FtpType};
use crate::proto::pipeline::{self, Conntrack, Entry, HookCtx, Packet, Verdict};
use crate::proto::tuple::{Addr, Dir, Tuple, IPPROTO_TCP, IPPROTO_UDP, L3, L4};
use core::fmt;

/// The helpers this module has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HelperKind {
    /// `nf_conntrack_ftp`.
    Ftp,
    /// `nf_conntrack_tftp`.
    Tftp,
}

/// `MAX_PORTS` of the FTP and TFTP helpers: ports one helper may watch.
pub(crate) const MAX_PORTS: usize = 8;

/// `ftp_exp_policy`.
pub(crate) const FTP_POLICY: ExpectPolicy = ExpectPolicy {
    max_expected: 1,
    timeout: 5 * 60,
    name: "",
};

/// `tftp_exp_policy`.
pub(crate) const TFTP_POLICY: ExpectPolicy = ExpectPolicy {
    max_expected: 1,
    timeout: 5 * 60,
    name: "",
};

impl HelperKind {
    /// The helper's name (`HELPER_NAME`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            HelperKind::Ftp => "ftp",
            HelperKind::Tftp => "tftp",
        }
    }

    /// The port it watches unless told otherwise (`FTP_PORT`, `TFTP_PORT`).
    pub(crate) fn default_port(self) -> u16 {
        match self {
            HelperKind::Ftp => 21,
            HelperKind::Tftp => 69,
        }
    }

    /// The transport it watches.
    pub(crate) fn proto(self) -> u8 {
        match self {
            HelperKind::Ftp => IPPROTO_TCP,
            HelperKind::Tftp => IPPROTO_UDP,
        }
    }

    /// Its expectation policies, by class.
    pub(crate) fn policies(self) -> &'static [ExpectPolicy] {
        match self {
            HelperKind::Ftp => core::slice::from_ref(&FTP_POLICY),
            HelperKind::Tftp => core::slice::from_ref(&TFTP_POLICY),
        }
    }
}

/// One registered helper: a kind on one port, as `nf_ct_helper_init` registers one per port.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HelperId {
    /// What it parses.
    pub(crate) kind: HelperKind,
    /// The port it was registered for.
    pub(crate) port: u16,
    /// Its place in its parameter's list of ports.
    pub(crate) index: u8,
}

impl HelperId {
    /// The policy of expectation class `class`.
    pub(crate) fn policy(self, class: u8) -> Option<&'static ExpectPolicy> {
        self.kind.policies().get(usize::from(class))
    }
}

impl fmt::Display for HelperId {
    /// The helper's name as `nf_ct_helper_init` makes it: the plain name on the default
    /// port; on another, `ftp-` and the port (nf_conntrack_ftp passes the port as the id),
    /// `tftp-` and the port's place in `ports=` (nf_conntrack_tftp passes the index).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            _ if self.port == self.kind.default_port() => f.write_str(self.kind.name()),
            HelperKind::Ftp => write!(f, "ftp-{}", self.port),
            HelperKind::Tftp => write!(f, "tftp-{}", self.index),
        }
    }
}

/// The ports each helper watches (module parameters, fixed at load).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HelperPorts {
    /// FTP's ports; zeroes are unused slots.
    pub(crate) ftp: [u16; MAX_PORTS],
    /// TFTP's ports; zeroes are unused slots.
    pub(crate) tftp: [u16; MAX_PORTS],
}

impl HelperPorts {
    /// Each helper on its default port only, as without `ports=`.
    pub(crate) const fn defaults() -> Self {
        let mut ftp = [0; MAX_PORTS];
        ftp[0] = 21;
        let mut tftp = [0; MAX_PORTS];
        tftp[0] = 69;
        Self { ftp, tftp }
    }

    /// From the parameters' values: an empty list means the default port, as the helpers'
    /// `ports_c == 0` does.
    pub(crate) fn from_params(ftp: &[u16], tftp: &[u16]) -> Self {
        let mut p = Self::defaults();
        for (list, given) in [(&mut p.ftp, ftp), (&mut p.tftp, tftp)] {
            if given.iter().any(|&port| port != 0) {
                *list = [0; MAX_PORTS];
                for (slot, &port) in list.iter_mut().zip(given.iter().filter(|&&p| p != 0)) {
                    *slot = port;
                }
            }
        }
        p
    }

    /// The helper a new connection with original tuple `t` gets (`__nf_ct_helper_find` on
    /// its reply tuple: the source port of the reply is the original destination port).
    pub(crate) fn assign(&self, t: &Tuple) -> Option<HelperId> {
        let L4::Ports { dst, .. } = t.l4 else {
            return None;
        };
        if dst == 0 {
            return None;
        }
        let (kind, ports) = match t.proto {
            IPPROTO_TCP => (HelperKind::Ftp, &self.ftp),
            IPPROTO_UDP => (HelperKind::Tftp, &self.tftp),
            _ => return None,
        };
        let index = ports.iter().position(|&p| p == dst)?;
        Some(HelperId {
            kind,
            port: dst,
            // Below `MAX_PORTS`.
            index: index as u8,
        })
    }
}

/// `TFTP_OPCODE_READ`.
pub(crate) const TFTP_OPCODE_READ: u16 = 1;
/// `TFTP_OPCODE_WRITE`.
pub(crate) const TFTP_OPCODE_WRITE: u16 = 2;

/// `nf_conntrack_tftp`'s `tftp_help`: whether a UDP payload beginning with `opcode` (the
/// first two bytes, `None` if the payload is shorter) makes the master expect its reply. Read
/// and write requests do, in either direction; data, acknowledgements, errors and unknown
/// opcodes do not.
pub(crate) fn tftp_expects(opcode: Option<[u8; 2]>) -> bool {
    matches!(
        opcode.map(u16::from_be_bytes),
        Some(TFTP_OPCODE_READ | TFTP_OPCODE_WRITE)
    )
}

/// A helper's master as the helper hook found it for a packet.
struct Found<R> {
    entry: R,
    dir: Dir,
    ctinfo: CtInfo,
    orig: Tuple,
    reply: Tuple,
}

/// The entry a packet at the helper hook belongs to. Between the hooks NAT may have
/// translated the packet: then it reads as the inverse of its entry's other direction.
/// A first packet belongs to the unconfirmed entry carrying its cookie, whose reply tuple is
/// then what the confirm hook's hand-off will make it.
fn find_master<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    t: &Tuple,
    ctx: &HookCtx,
) -> Option<Found<C::Ref>> {
    let now = ctx.clock.now;
    let key = t.key();
    let hit = ct.find(&key, ct.hash(&key), now).or_else(|| {
        let inv = t.invert()?.key();
        let (e, d) = ct.find(&inv, ct.hash(&inv), now)?;
        Some((e, d.reverse()))
    });
    if let Some((entry, dir)) = hit {
        let ctinfo = CtInfo::of_match(dir, entry.status());
        let orig = entry.tuple(Dir::Original)?;
        let reply = entry.tuple(Dir::Reply)?;
        return Some(Found {
            entry,
            dir,
            ctinfo,
            orig,
            reply,
        });
    }
    if !ct.may_hold_unconfirmed(ctx.cookie) {
        return None;
    }
    let entry = ct.peek_unconfirmed(ctx.cookie)?;
    let orig = entry.tuple(Dir::Original)?;
    let reply = match handoff(&orig, Some(t), pkt.nf_view().as_ref()) {
        Handoff::Confirm { reply: Some(r) } => r,
        Handoff::Confirm { reply: None } => entry.tuple(Dir::Reply)?,
        Handoff::Orphan => return None,
    };
    Some(Found {
        entry,
        dir: Dir::Original,
        ctinfo: CtInfo::New,
        orig,
        reply,
    })
}

/// The helper hook (`NF_IP_PRI_CONNTRACK_HELPER` on POST_ROUTING and LOCAL_IN): runs the
/// helper of the packet's entry, as 6.12's `nf_confirm` does before confirming. At this
/// priority the payload is still what the sender wrote: nf_nat's helpers rewrite it later,
/// from nf_conntrack's `nf_confirm`, so both trackers' helpers parse the same bytes.
pub(crate) fn help<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    ctx: &HookCtx,
) -> Verdict {
    if ct.helped() == 0 {
        return Verdict::Accept;
    }
    let Ok(parsed) = pipeline::parse(pkt, ctx) else {
        return Verdict::Accept;
    };
    let t = parsed.tuple;
    if t.proto != IPPROTO_TCP && t.proto != IPPROTO_UDP {
        return Verdict::Accept;
    }
    let Some(m) = find_master(ct, pkt, &t, ctx) else {
        return Verdict::Accept;
    };
    let Some(helper) = ct.helper_of(&m.entry) else {
        return Verdict::Accept;
    };
    // nf_conntrack has seen the packet by now: remember how far nf_nat's helpers moved the
    // sequence numbers, for the tracking hook, which may run before nf_conntrack's.
    if let Some([this, other]) = pkt.nf_seqadj() {
        let adj = match m.dir {
            Dir::Original => [this, other],
            Dir::Reply => [other, this],
        };
        ct.set_seqadj(&m.entry, adj);
    }
    let exp = match helper.kind {
        HelperKind::Ftp => match ftp(ct, pkt, parsed.dataoff, &m, helper) {
            Ok(Some(exp)) => exp,
            Ok(None) => return Verdict::Accept,
            Err(msg) => {
                ct.helper_log(helper, msg);
                return Verdict::Drop;
            }
        },
        HelperKind::Tftp => {
            let mut op = [0u8; 2];
            let opcode = pkt
                .read(parsed.dataoff.saturating_add(8), &mut op)
                .ok()
                .map(|()| op);
            if !tftp_expects(opcode) {
                return Verdict::Accept;
            }
            let L4::Ports { dst: dport, .. } = m.reply.l4 else {
                return Verdict::Accept;
            };
            expectation(
                m.entry,
                helper,
                NF_CT_EXPECT_CLASS_DEFAULT,
                m.reply.l3,
                IPPROTO_UDP,
                Some(m.reply.src),
                m.reply.dst,
                None,
                dport,
            )
        }
    };
    // "Can't expect this?  Best to drop packet now."
    match ct.expect_related(exp, &ctx.clock) {
        Ok(()) => Verdict::Accept,
        Err(_) => {
            ct.helper_log(helper, "cannot add expectation");
            Verdict::Drop
        }
    }
}

/// `nf_conntrack_ftp`'s `help` on a packet of master `m`: the expectation to add, none, or
/// the reason to drop the packet.
fn ftp<C: Conntrack + ?Sized, P: Packet + ?Sized>(
    ct: &C,
    pkt: &P,
    protoff: usize,
    m: &Found<C::Ref>,
    helper: HelperId,
) -> Result<Option<Expectation<C::Ref>>, &'static str> {
    // "Until there's been traffic both ways, don't look in packets."
    if !matches!(m.ctinfo, CtInfo::Established | CtInfo::EstablishedReply) {
        return Ok(None);
    }
    let mut th = [0u8; 20];
    if pkt.read(protoff, &mut th).is_err() {
        return Ok(None);
    }
    let doff = usize::from(th[12] >> 4) * 4;
    let dataoff = protoff.saturating_add(doff);
    // "No data?"
    if dataoff >= pkt.len() {
        return Ok(None);
    }
    let seq = u32::from_be_bytes([th[4], th[5], th[6], th[7]]);
    let payload = pkt.tail(dataoff).ok_or("cannot linearize")?;
    let loose = ct.ftp_loose();
    let outcome = ct
        .with_ftp(&m.entry, |st| {
            let out = helper_ftp::help(st, m.dir, seq, payload, &m.orig, &m.reply, loose);
            // The expectation needs no allocation before it is added: the line start is
            // recorded as 6.12 does once it has allocated one.
            if let FtpOutcome::Match(found) = &out {
                found.commit(st, m.dir);
            }
            out
        })
        .unwrap_or(FtpOutcome::Accept);
    if let FtpOutcome::Match(found) = &outcome {
        if found.expect.is_some() && pkt.nf_nat_helper() {
            expect_rewrite(ct, m, found, seq);
        }
    }
    match outcome {
        FtpOutcome::Accept => Ok(None),
        FtpOutcome::Drop(msg) => Err(msg),
        FtpOutcome::Match(found) => Ok(found.expect.map(|e| {
            expectation(
                m.entry.clone(),
                helper,
                NF_CT_EXPECT_CLASS_DEFAULT,
                e.l3,
                IPPROTO_TCP,
                Some(e.src),
                e.dst,
                None,
                e.port,
            )
        })),
    }
}

/// nf_nat_ftp will rewrite the command or reply `found` (in a packet at `seq` of master `m`)
/// after this hook, and nf_conntrack will move the sender's later sequence numbers by the
/// difference in length (`nf_ct_seqadj_set`). The tracking hook may run before
/// nf_conntrack's, and then would not see that adjustment until a packet has passed this
/// hook again: the adjustment is recorded now, as nf_nat_ftp will make it (the address the
/// connection will come to, `ct->tuplehash[!dir].tuple.dst`, and the port it names, which
/// nf_nat_ftp keeps unless another expectation holds it).
fn expect_rewrite<C: Conntrack + ?Sized>(
    ct: &C,
    m: &Found<C::Ref>,
    found: &helper_ftp::FtpMatch,
    seq: u32,
) {
    let Some(e) = found.expect else {
        return;
    };
    let newaddr = match m.dir {
        Dir::Original => m.reply.dst,
        Dir::Reply => m.orig.dst,
    };
    let len = nat_ftp_len(found.ftptype, m.orig.l3, &newaddr, e.port);
    let delta = (len as i64).wrapping_sub(found.matchlen as i64) as i32;
    if delta == 0 {
        return;
    }
    let mut adj = ct.seqadj(&m.entry).unwrap_or_default();
    if let Some(way) = adj.get_mut(m.dir as usize) {
        way.set(seq, delta);
    }
    ct.set_seqadj(&m.entry, adj);
}

/// Counts what is written to it.
struct Count(usize);

impl fmt::Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

/// The length of what `nf_nat_ftp_fmt_cmd` writes for `ty` with `addr` and `port` (IPv6
/// addresses in full, as `%pI6` prints them).
pub(crate) fn nat_ftp_len(ty: FtpType, l3: L3, addr: &Addr, port: u16) -> usize {
    use fmt::Write;
    let mut c = Count(0);
    let [a0, a1, a2, a3, ..] = addr.0;
    let _ = match ty {
        FtpType::Port | FtpType::Pasv => {
            write!(c, "{a0},{a1},{a2},{a3},{},{}", port >> 8, port & 0xff)
        }
        FtpType::Eprt if l3 == L3::Ipv4 => write!(c, "|1|{a0}.{a1}.{a2}.{a3}|{port}|"),
        FtpType::Eprt => {
            // `%pI6`: eight groups of four hex digits.
            let _ = c.write_str("|2|");
            let _ = c.write_str("0000:0000:0000:0000:0000:0000:0000:0000");
            write!(c, "|{}|", port)
        }
        FtpType::Epsv => write!(c, "|||{}|", port),
    };
    c.0
}
