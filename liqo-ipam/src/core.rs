//! The allocation core: pure, synchronous, no I/O.
//!
//! [`Ipam`] keeps one binary prefix tree per address pool, as upstream Liqo's IPAM does. Each
//! node of a tree is a prefix; its two children are the halves of that prefix. A node is
//! *free*, *shared* (acquired by one or more holders that may overlap each other) or
//! *exclusive* (acquired by one holder, overlapping nothing else). A tree is only split where
//! something below is acquired, and freed halves are merged back at once, so the tree stays as
//! small as the set of allocations it describes.
//!
//! Every node also keeps two summaries of its subtree, refreshed along the path of each change:
//! the shortest prefix length of a completely free block below it, and whether an exclusive
//! allocation sits below it. With them, finding the first free prefix of a given length and
//! checking an exact prefix both walk one root-to-leaf path: the cost does not grow with the
//! number of allocated networks.
//!
//! The rules follow upstream Liqo's `NetworkAcquire`:
//!
//! - an **immutable** request gets exactly its CIDR or an error. An **exclusive** one conflicts
//!   with any acquired prefix that is the same, an ancestor or a descendant; a **shared** one
//!   only with exclusive ones, and acquiring the same shared prefix again increments its
//!   reference count;
//! - an immutable, shared request outside every pool is accepted without being tracked (the
//!   allocator never hands out addresses there anyway), while an immutable, exclusive one
//!   outside every pool is an error. One that *contains* whole pools reserves them;
//! - a **mutable** request gets its CIDR when it is free, otherwise the first free prefix of the
//!   same length, pool by pool in configuration order. Inside a pool the search goes left
//!   (lower addresses) first but, like upstream, prefers a half that is already split, which
//!   keeps allocations packed together instead of fragmenting untouched space. Mutable requests
//!   are always exclusive;
//! - finally the first `pre_allocated` addresses of the network are reserved.
//!
//! Addresses inside an acquired network are kept as sorted, merged ranges, so handing out the
//! next free address never scans the network from its start.

use std::{
    collections::BTreeMap,
    fmt,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::error::{Error, Result};

/// What is asked of the allocator (upstream's `NetworkAcquire` request).
///
/// Built with [`NetworkRequest::new`] and refined with the builder methods; the fields are
/// public so that controllers can fill them from a resource's spec.
///
/// ```
/// use liqo_ipam::core::NetworkRequest;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // The local pod CIDR: exactly this range, possibly reserved more than once.
/// let pod = NetworkRequest::new("10.0.0.0/16".parse()?).immutable().shared();
/// assert!(pod.immutable && !pod.exclusive);
///
/// // The external CIDR: remapped if taken, its first address kept for the unknown-source IP.
/// let external = NetworkRequest::new("10.70.0.0/16".parse()?).pre_allocated(1);
/// assert!(!external.immutable && external.exclusive && external.pre_allocated == 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRequest {
    /// The CIDR wanted: the exact network for an immutable request, the preferred one (and the
    /// prefix length) for a mutable one. Host bits must be zero.
    pub cidr: IpNetwork,
    /// When true, exactly `cidr` is acquired or the request fails; when false the allocator may
    /// hand out another prefix of the same length (a remapping).
    pub immutable: bool,
    /// When true, the network overlaps nothing else that is acquired. When false (only
    /// meaningful for immutable requests) the same or overlapping shared prefixes may be
    /// acquired again; each acquisition needs its own release.
    pub exclusive: bool,
    /// How many addresses, from the first one, to reserve in the network once acquired.
    pub pre_allocated: u32,
}

impl NetworkRequest {
    /// A mutable, exclusive request for `cidr`, with nothing pre-allocated.
    #[must_use]
    pub fn new(cidr: IpNetwork) -> Self {
        Self {
            cidr,
            immutable: false,
            exclusive: true,
            pre_allocated: 0,
        }
    }

    /// Asks for exactly this CIDR: the request fails instead of being remapped.
    #[must_use]
    pub fn immutable(self) -> Self {
        Self {
            immutable: true,
            ..self
        }
    }

    /// Makes the request non-exclusive: the same prefix (and overlapping shared ones) may be
    /// acquired again, with a reference count. Only immutable requests can be shared; a mutable
    /// request is always served exclusively.
    #[must_use]
    pub fn shared(self) -> Self {
        Self {
            exclusive: false,
            ..self
        }
    }

    /// Reserves the first `n` addresses of the acquired network.
    #[must_use]
    pub fn pre_allocated(self, n: u32) -> Self {
        Self {
            pre_allocated: n,
            ..self
        }
    }
}

/// Parses a CIDR written as `address/length`, strictly: the prefix length is required and
/// must fit the address family, and host bits must be zero.
///
/// ```
/// use liqo_ipam::{core::parse_cidr, Error};
///
/// assert_eq!(parse_cidr("10.0.0.0/16").unwrap().to_string(), "10.0.0.0/16");
/// assert!(matches!(parse_cidr("10.0.0.1/16"), Err(Error::InvalidCidr { .. })));
/// assert!(matches!(parse_cidr("fd00::/129"), Err(Error::InvalidPrefixLength { .. })));
/// ```
///
/// # Errors
///
/// [`Error::InvalidCidr`] for a malformed or non-canonical CIDR, [`Error::InvalidPrefixLength`]
/// for a prefix length out of range.
pub fn parse_cidr(s: &str) -> Result<IpNetwork> {
    let invalid = |reason: &str| Error::InvalidCidr {
        cidr: s.to_owned(),
        reason: reason.to_owned(),
    };
    let (addr, len) = s.trim().split_once('/').ok_or_else(|| {
        invalid("the prefix length is missing: write it as address/length, e.g. 10.0.0.0/16")
    })?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| invalid("the address is not an IPv4 or IPv6 address"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| invalid("the prefix length is not a number"))?;
    let fam = Family::of_addr(addr);
    let prefix_len =
        u8::try_from(len)
            .ok()
            .filter(|l| *l <= fam.bits())
            .ok_or(Error::InvalidPrefixLength {
                cidr: s.to_owned(),
                prefix_len: len,
                max: fam.bits(),
            })?;
    let net = make_network(fam, to_u128(addr), prefix_len);
    validate_cidr(net)?;
    Ok(net)
}

/// Checks that a CIDR is canonical (its host bits are zero), as the allocator requires.
///
/// # Errors
///
/// [`Error::InvalidCidr`], naming the canonical form, when host bits are set.
pub fn validate_cidr(cidr: IpNetwork) -> Result<()> {
    Prefix::canonical(cidr).map(|_| ())
}

// ---------------------------------------------------------------------------------------------
// Address arithmetic, shared with the remapping and naive modules.

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub(crate) const fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    pub(crate) fn of_addr(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    pub(crate) fn of_net(net: IpNetwork) -> Self {
        Self::of_addr(net.ip())
    }
}

/// An address as an unsigned integer (IPv4 in the low 32 bits).
pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// The address of `fam` whose integer value is `value` (truncated to the family's width).
pub(crate) fn to_addr(fam: Family, value: u128) -> IpAddr {
    match fam {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// The mask of the host bits of a `/len` prefix of `fam` (`len` at most the family's width).
pub(crate) fn host_mask(fam: Family, len: u8) -> u128 {
    let host_bits = u32::from(fam.bits().saturating_sub(len));
    if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    }
}

/// Builds the network `value/len` of `fam`; `len` is at most the family's width.
pub(crate) fn make_network(fam: Family, value: u128, len: u8) -> IpNetwork {
    match to_addr(fam, value) {
        IpAddr::V4(a) => match Ipv4Network::new_checked(a, len) {
            Some(n) => IpNetwork::V4(n),
            // Unreachable: every caller passes a length within the family's width.
            None => IpNetwork::V4(Ipv4Network::from(a)),
        },
        IpAddr::V6(a) => match Ipv6Network::new_checked(a, len) {
            Some(n) => IpNetwork::V6(n),
            None => IpNetwork::V6(Ipv6Network::from(a)),
        },
    }
}

/// A canonical prefix in integer form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Prefix {
    pub(crate) fam: Family,
    pub(crate) base: u128,
    pub(crate) len: u8,
}

impl Prefix {
    /// Converts a network, rejecting host bits.
    pub(crate) fn canonical(net: IpNetwork) -> Result<Self> {
        let fam = Family::of_net(net);
        let len = net.prefix();
        let value = to_u128(net.ip());
        let host = host_mask(fam, len);
        if value & host != 0 {
            return Err(Error::InvalidCidr {
                cidr: net.to_string(),
                reason: format!(
                    "host bits are set: the network address of this prefix is {}",
                    make_network(fam, value & !host, len)
                ),
            });
        }
        Ok(Self {
            fam,
            base: value,
            len,
        })
    }

    pub(crate) fn network(self) -> IpNetwork {
        make_network(self.fam, self.base, self.len)
    }

    pub(crate) fn last(self) -> u128 {
        self.base | host_mask(self.fam, self.len)
    }

    /// Whether `other` is this prefix or lies inside it.
    pub(crate) fn contains(self, other: Prefix) -> bool {
        self.fam == other.fam
            && self.len <= other.len
            && other.base & !host_mask(self.fam, self.len) == self.base
    }

    pub(crate) fn contains_addr(self, addr: IpAddr) -> bool {
        Family::of_addr(addr) == self.fam
            && to_u128(addr) & !host_mask(self.fam, self.len) == self.base
    }

    /// The half `side` (0 lower, 1 upper); the prefix must be shorter than the family width.
    fn child(self, side: usize) -> Prefix {
        let shift = u32::from(self.fam.bits() - self.len - 1);
        Prefix {
            fam: self.fam,
            base: self.base | ((side as u128) << shift),
            len: self.len + 1,
        }
    }

    /// Which half holds `inner`, a strictly longer prefix inside this one.
    fn side_of(self, inner: Prefix) -> usize {
        let shift = u32::from(self.fam.bits() - self.len - 1);
        ((inner.base >> shift) & 1) as usize
    }
}

/// Whether `n` more addresses fit a `/len` network of `fam`.
fn check_pre_allocated(fam: Family, len: u8, n: u32) -> Result<()> {
    let host_bits = fam.bits() - len;
    if host_bits < 32 && u64::from(n) > 1u64 << host_bits {
        return Err(Error::PreAllocatedTooLarge {
            pre_allocated: n,
            prefix_len: len,
        });
    }
    Ok(())
}

pub(crate) fn check_pre_allocated_for(net: IpNetwork, n: u32) -> Result<()> {
    check_pre_allocated(Family::of_net(net), net.prefix(), n)
}

// ---------------------------------------------------------------------------------------------
// The prefix tree.

const NO_FREE_BLOCK: u8 = u8::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Free,
    Shared(u32),
    Exclusive,
}

/// A node of a pool's tree. Its prefix is not stored: it is known while walking from the root.
#[derive(Debug, Clone)]
struct Node {
    state: State,
    /// The two halves, present only when something below is acquired.
    children: Option<Box<[Node; 2]>>,
    /// The shortest prefix length of a completely free block in this subtree that a mutable
    /// request may take (none inside acquired nodes), or `NO_FREE_BLOCK`.
    best: u8,
    /// Whether an exclusive allocation lies strictly below this node.
    exclusive_below: bool,
    /// The addresses allocated inside this network, when it is acquired.
    ips: Option<Box<IpSet>>,
}

impl Node {
    fn free_leaf(len: u8) -> Self {
        Node {
            state: State::Free,
            children: None,
            best: len,
            exclusive_below: false,
            ips: None,
        }
    }

    fn is_acquired(&self) -> bool {
        self.state != State::Free
    }

    fn is_free_leaf(&self) -> bool {
        self.state == State::Free && self.children.is_none()
    }

    fn halves(&mut self, len: u8) -> &mut [Node; 2] {
        self.children
            .get_or_insert_with(|| Box::new([Node::free_leaf(len + 1), Node::free_leaf(len + 1)]))
    }

    /// Merges free halves and recomputes the summaries from the children; `len` is the
    /// node's prefix length.
    fn refresh(&mut self, len: u8) {
        if self
            .children
            .as_ref()
            .is_some_and(|c| c.iter().all(Node::is_free_leaf))
        {
            self.children = None;
        }
        match &self.children {
            None => {
                self.best = if self.is_acquired() {
                    NO_FREE_BLOCK
                } else {
                    len
                };
                self.exclusive_below = false;
            }
            Some(c) => {
                self.best = if self.is_acquired() {
                    NO_FREE_BLOCK
                } else {
                    c[0].best.min(c[1].best)
                };
                self.exclusive_below = c
                    .iter()
                    .any(|n| n.state == State::Exclusive || n.exclusive_below);
            }
        }
    }
}

/// Why an exact prefix cannot be acquired.
enum Conflict {
    Ancestor { at: Prefix, exclusive: bool },
    Itself { exclusive: bool },
    Descendant { at: Prefix, exclusive: bool },
}

impl Conflict {
    fn reason(&self) -> String {
        match self {
            Conflict::Ancestor {
                at,
                exclusive: true,
            } => {
                format!(
                    "it lies inside {}, which is allocated exclusively",
                    at.network()
                )
            }
            Conflict::Ancestor {
                at,
                exclusive: false,
            } => {
                format!("it lies inside {}, which is reserved", at.network())
            }
            Conflict::Itself { exclusive: true } => {
                "it is already allocated exclusively".to_owned()
            }
            Conflict::Itself { exclusive: false } => {
                "it is already reserved as a shared network".to_owned()
            }
            Conflict::Descendant {
                at,
                exclusive: true,
            } => {
                format!(
                    "it contains {}, which is allocated exclusively",
                    at.network()
                )
            }
            Conflict::Descendant {
                at,
                exclusive: false,
            } => {
                format!("it contains {}, which is reserved", at.network())
            }
        }
    }
}

/// Finds an acquired node strictly below `node` (`exclusive_only`: an exclusive one).
fn find_below(mut node: &Node, mut at: Prefix, exclusive_only: bool) -> Option<(Prefix, bool)> {
    loop {
        let c = node.children.as_ref()?;
        let hit = |n: &Node| {
            if exclusive_only {
                n.state == State::Exclusive
            } else {
                n.is_acquired()
            }
        };
        if let Some(side) = (0..2).find(|&s| hit(&c[s])) {
            return Some((at.child(side), c[side].state == State::Exclusive));
        }
        let deeper = |n: &Node| {
            if exclusive_only {
                n.exclusive_below
            } else {
                n.children.is_some()
            }
        };
        let side = (0..2).find(|&s| deeper(&c[s]))?;
        node = &c[side];
        at = at.child(side);
    }
}

/// Checks, without changing anything, whether `target` can be acquired in the tree `root`
/// (whose prefix is `pool`).
fn check_exact(root: &Node, pool: Prefix, target: Prefix, exclusive: bool) -> Result<(), Conflict> {
    let mut node = root;
    let mut at = pool;
    while at.len < target.len {
        match node.state {
            State::Exclusive => {
                return Err(Conflict::Ancestor {
                    at,
                    exclusive: true,
                });
            }
            State::Shared(_) if exclusive => {
                return Err(Conflict::Ancestor {
                    at,
                    exclusive: false,
                });
            }
            _ => {}
        }
        let Some(c) = node.children.as_ref() else {
            // Nothing is acquired below: the whole range, target included, is unconstrained.
            return Ok(());
        };
        let side = at.side_of(target);
        node = &c[side];
        at = at.child(side);
    }
    match node.state {
        State::Exclusive => return Err(Conflict::Itself { exclusive: true }),
        State::Shared(_) if exclusive => return Err(Conflict::Itself { exclusive: false }),
        _ => {}
    }
    if (exclusive || node.exclusive_below)
        && let Some((below, excl)) = find_below(node, at, !exclusive)
    {
        return Err(Conflict::Descendant {
            at: below,
            exclusive: excl,
        });
    }
    Ok(())
}

/// Acquires `target` below `node` (prefix `at`); `check_exact` must have accepted it.
fn acquire_exact(node: &mut Node, at: Prefix, target: Prefix, exclusive: bool) {
    if at.len == target.len {
        node.state = match (node.state, exclusive) {
            (_, true) => State::Exclusive,
            (State::Free, false) => State::Shared(1),
            (State::Shared(n), false) => State::Shared(n.saturating_add(1)),
            (State::Exclusive, false) => State::Exclusive,
        };
    } else {
        let side = at.side_of(target);
        acquire_exact(
            &mut node.halves(at.len)[side],
            at.child(side),
            target,
            exclusive,
        );
    }
    node.refresh(at.len);
}

/// Takes, exclusively, the first free `/len` below `node` (prefix `at`) in upstream's order:
/// lower half first, unless only the upper half is already split.
fn allocate_first(node: &mut Node, at: Prefix, len: u8) -> Option<Prefix> {
    if node.best > len {
        return None;
    }
    let got = if at.len == len {
        // `best == len` here: the node is a free leaf.
        node.state = State::Exclusive;
        Some(at)
    } else {
        let c = node.halves(at.len);
        let order = if c[0].children.is_none() && c[1].children.is_some() {
            [1, 0]
        } else {
            [0, 1]
        };
        let side = if c[order[0]].best <= len {
            order[0]
        } else {
            order[1]
        };
        allocate_first(&mut c[side], at.child(side), len)
    };
    node.refresh(at.len);
    got
}

/// Releases one acquisition of `target` below `node` (prefix `at`); false if not acquired.
fn release(node: &mut Node, at: Prefix, target: Prefix) -> bool {
    let released = if at.len == target.len {
        match node.state {
            State::Free => false,
            State::Shared(n) if n > 1 => {
                node.state = State::Shared(n - 1);
                true
            }
            State::Shared(_) | State::Exclusive => {
                node.state = State::Free;
                node.ips = None;
                true
            }
        }
    } else {
        let side = at.side_of(target);
        match node.children.as_mut() {
            Some(c) => release(&mut c[side], at.child(side), target),
            None => false,
        }
    };
    node.refresh(at.len);
    released
}

fn find_node(root: &Node, pool: Prefix, target: Prefix) -> Option<&Node> {
    let mut node = root;
    let mut at = pool;
    while at.len < target.len {
        let side = at.side_of(target);
        node = &node.children.as_ref()?[side];
        at = at.child(side);
    }
    Some(node)
}

fn find_node_mut(root: &mut Node, pool: Prefix, target: Prefix) -> Option<&mut Node> {
    let mut node = root;
    let mut at = pool;
    while at.len < target.len {
        let side = at.side_of(target);
        node = &mut node.children.as_mut()?[side];
        at = at.child(side);
    }
    Some(node)
}

fn collect_acquired(node: &Node, at: Prefix, out: &mut Vec<IpNetwork>) {
    if node.is_acquired() {
        out.push(at.network());
    }
    if let Some(c) = &node.children {
        collect_acquired(&c[0], at.child(0), out);
        collect_acquired(&c[1], at.child(1), out);
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses inside a network.

/// Allocated addresses as disjoint, non-adjacent inclusive ranges, plus the round-robin cursor.
#[derive(Debug, Clone, Default)]
struct IpSet {
    ranges: BTreeMap<u128, u128>,
    next: Option<u128>,
}

impl IpSet {
    /// The range holding `a`, if any.
    fn range_of(&self, a: u128) -> Option<(u128, u128)> {
        self.ranges
            .range(..=a)
            .next_back()
            .filter(|(_, end)| **end >= a)
            .map(|(s, e)| (*s, *e))
    }

    fn contains(&self, a: u128) -> bool {
        self.range_of(a).is_some()
    }

    /// Adds `lo..=hi`, merging with overlapping and adjacent ranges.
    fn insert_range(&mut self, lo: u128, hi: u128) {
        let touching: Vec<(u128, u128)> = self
            .ranges
            .range(..=hi.saturating_add(1))
            .rev()
            .take_while(|(_, end)| end.saturating_add(1) >= lo)
            .map(|(s, e)| (*s, *e))
            .collect();
        let (mut start, mut end) = (lo, hi);
        for (s, e) in touching {
            self.ranges.remove(&s);
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    fn remove(&mut self, a: u128) -> bool {
        let Some((s, e)) = self.range_of(a) else {
            return false;
        };
        self.ranges.remove(&s);
        if s < a {
            self.ranges.insert(s, a - 1);
        }
        if a < e {
            self.ranges.insert(a + 1, e);
        }
        true
    }

    /// The first free address at or after `from` in `..=last`.
    fn free_from(&self, from: u128, last: u128) -> Option<u128> {
        match self.range_of(from) {
            None => Some(from),
            Some((_, end)) if end < last => Some(end + 1),
            Some(_) => None,
        }
    }

    /// The next free address in `first..=last`, from the cursor on, wrapping around once.
    fn next_free(&self, first: u128, last: u128) -> Option<u128> {
        let start = self
            .next
            .filter(|c| (first..=last).contains(c))
            .unwrap_or(first);
        self.free_from(start, last).or_else(|| {
            if start == first {
                None
            } else {
                self.free_from(first, last)
            }
        })
    }

    fn iter(&self) -> impl Iterator<Item = u128> + '_ {
        self.ranges.iter().flat_map(|(s, e)| *s..=*e)
    }
}

// ---------------------------------------------------------------------------------------------
// The allocator.

#[derive(Debug, Clone)]
struct Pool {
    prefix: Prefix,
    root: Node,
    /// How many live immutable, shared reservations contain this whole pool.
    covered: u32,
}

impl Pool {
    fn new(prefix: Prefix) -> Self {
        Pool {
            prefix,
            root: Node::free_leaf(prefix.len),
            covered: 0,
        }
    }
}

/// The allocator state: one binary prefix tree per pool.
///
/// Pure and synchronous: wrap it in a lock to share it (the crate's `TreeAllocator` does).
/// See the [module documentation](self) for the allocation rules.
///
/// ```
/// use liqo_ipam::core::{Ipam, NetworkRequest};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut ipam = Ipam::with_default_pools();
///
/// // Reserve the local pod CIDR: it is never handed out to anyone.
/// ipam.acquire_network(&NetworkRequest::new("10.0.0.0/16".parse()?).immutable().shared())?;
///
/// // A peer using the same pod CIDR is remapped to the first free /16.
/// let peer = ipam.acquire_network(&NetworkRequest::new("10.0.0.0/16".parse()?))?;
/// assert_eq!(peer.to_string(), "10.1.0.0/16");
///
/// // Addresses inside an acquired network are handed out in turn.
/// let external = ipam.acquire_network(&NetworkRequest::new("10.70.0.0/16".parse()?).pre_allocated(1))?;
/// assert_eq!(ipam.acquire_ip(external, None)?.to_string(), "10.70.0.1");
///
/// // Releasing makes the space available again.
/// assert!(ipam.release_network(peer)?);
/// assert!(ipam.is_network_available(peer));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Ipam {
    pools: Vec<Pool>,
    /// Immutable, shared reservations that contain whole pools, with their reference counts.
    covering: BTreeMap<IpNetwork, u32>,
}

impl fmt::Debug for Ipam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let strings =
            |nets: Vec<IpNetwork>| nets.iter().map(ToString::to_string).collect::<Vec<_>>();
        f.debug_struct("Ipam")
            .field("pools", &strings(self.pools()))
            .field("networks", &strings(self.networks()))
            .finish()
    }
}

impl Ipam {
    /// The default pools, as upstream's: the three RFC 1918 private ranges.
    pub const DEFAULT_POOLS: [&'static str; 3] = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"];

    /// An allocator over `pools`, searched in the order given.
    ///
    /// # Errors
    ///
    /// [`Error::NoPools`] for an empty list, [`Error::InvalidCidr`] for a pool with host bits
    /// set, [`Error::OverlappingPools`] when two pools overlap.
    pub fn new(pools: impl IntoIterator<Item = IpNetwork>) -> Result<Self> {
        let mut out: Vec<Pool> = Vec::new();
        for net in pools {
            let prefix = Prefix::canonical(net)?;
            if let Some(other) = out
                .iter()
                .find(|p| p.prefix.contains(prefix) || prefix.contains(p.prefix))
            {
                return Err(Error::OverlappingPools(other.prefix.network(), net));
            }
            out.push(Pool::new(prefix));
        }
        if out.is_empty() {
            return Err(Error::NoPools);
        }
        Ok(Self {
            pools: out,
            covering: BTreeMap::new(),
        })
    }

    /// An allocator over [`Ipam::DEFAULT_POOLS`].
    #[must_use]
    pub fn with_default_pools() -> Self {
        const fn v4(a: u8, b: u8, len: u8) -> Prefix {
            Prefix {
                fam: Family::V4,
                base: (u32::from_be_bytes([a, b, 0, 0])) as u128,
                len,
            }
        }
        let defaults = [v4(10, 0, 8), v4(172, 16, 12), v4(192, 168, 16)];
        Self {
            pools: defaults.into_iter().map(Pool::new).collect(),
            covering: BTreeMap::new(),
        }
    }

    /// The pools, in search order.
    #[must_use]
    pub fn pools(&self) -> Vec<IpNetwork> {
        self.pools.iter().map(|p| p.prefix.network()).collect()
    }

    /// Acquires a network as `req` asks (see the [module documentation](self)) and returns it.
    ///
    /// An immutable, shared request outside every pool is accepted without being tracked: it
    /// is returned as is, nothing is pre-allocated in it, and releasing it returns `false`.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidCidr`]: host bits set in `req.cidr`;
    /// - [`Error::PreAllocatedTooLarge`]: more addresses to pre-allocate than the network holds;
    /// - [`Error::OutsidePools`]: immutable and exclusive, but outside every pool;
    /// - [`Error::Unavailable`]: immutable, and the CIDR conflicts with an acquired one;
    /// - [`Error::PoolExhausted`]: mutable, and no free prefix of that length is left;
    /// - [`Error::FamilyMismatch`]: mutable, and no pool has the request's address family.
    ///
    /// On error nothing changes.
    pub fn acquire_network(&mut self, req: &NetworkRequest) -> Result<IpNetwork> {
        let target = Prefix::canonical(req.cidr)?;
        check_pre_allocated(target.fam, target.len, req.pre_allocated)?;
        let home = self.pool_of(target);
        let acquired = match (home, req.immutable) {
            (None, true) => return self.reserve_outside(target, req.exclusive),
            (Some(i), true) => {
                self.acquire_exact_in(i, target, req.exclusive)?;
                target
            }
            (_, false) => self.acquire_mutable(home, target)?,
        };
        if req.pre_allocated > 0
            && let Some(node) = self.node_mut(acquired)
        {
            let last = acquired.base + u128::from(req.pre_allocated) - 1;
            node.ips
                .get_or_insert_with(Default::default)
                .insert_range(acquired.base, last);
        }
        Ok(acquired.network())
    }

    /// Releases one acquisition of `cidr`: an exclusive network is freed, a shared one loses a
    /// reference (and is freed with the last one). Freed space is merged with free neighbours
    /// and can be handed out again at once; the addresses allocated in a freed network are
    /// released with it.
    ///
    /// Returns `Ok(false)`, changing nothing, when `cidr` is not allocated: releasing twice is
    /// harmless.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when host bits are set.
    pub fn release_network(&mut self, cidr: IpNetwork) -> Result<bool> {
        let target = Prefix::canonical(cidr)?;
        if let Some(count) = self.covering.get_mut(&cidr) {
            *count -= 1;
            if *count == 0 {
                self.covering.remove(&cidr);
            }
            for pool in self.pools.iter_mut().filter(|p| target.contains(p.prefix)) {
                pool.covered = pool.covered.saturating_sub(1);
            }
            return Ok(true);
        }
        Ok(match self.pool_of(target) {
            Some(i) => {
                let pool = &mut self.pools[i];
                release(&mut pool.root, pool.prefix, target)
            }
            None => false,
        })
    }

    /// Whether `cidr` could be acquired exactly, as an exclusive network, right now: it lies in
    /// a pool and overlaps nothing acquired. False for invalid input.
    #[must_use]
    pub fn is_network_available(&self, cidr: IpNetwork) -> bool {
        let Ok(target) = Prefix::canonical(cidr) else {
            return false;
        };
        self.pool_of(target).is_some_and(|i| {
            let pool = &self.pools[i];
            pool.covered == 0 && check_exact(&pool.root, pool.prefix, target, true).is_ok()
        })
    }

    /// Acquires an address in the acquired network `network`: `hint` exactly when given,
    /// otherwise the next free address after the last one handed out (round robin, wrapping to
    /// the network's first address; the first acquisition starts from the first address).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when host bits are set, [`Error::NotAllocated`] when `network` is
    /// not an acquired network, [`Error::IpOutsideNetwork`] when the hint is not in it,
    /// [`Error::IpUnavailable`] when the hint is taken, [`Error::NetworkFull`] when no address
    /// is left.
    pub fn acquire_ip(&mut self, network: IpNetwork, hint: Option<IpAddr>) -> Result<IpAddr> {
        let target = Prefix::canonical(network)?;
        if let Some(ip) = hint
            && !target.contains_addr(ip)
        {
            return Err(Error::IpOutsideNetwork { ip, network });
        }
        let node = self
            .node_mut(target)
            .filter(|n| n.is_acquired())
            .ok_or(Error::NotAllocated(network))?;
        let ips = node.ips.get_or_insert_with(Default::default);
        match hint {
            Some(ip) => {
                let value = to_u128(ip);
                if ips.contains(value) {
                    return Err(Error::IpUnavailable { ip, network });
                }
                ips.insert_range(value, value);
                Ok(ip)
            }
            None => {
                let (first, last) = (target.base, target.last());
                let value = ips
                    .next_free(first, last)
                    .ok_or(Error::NetworkFull(network))?;
                ips.insert_range(value, value);
                ips.next = Some(if value == last { first } else { value + 1 });
                Ok(to_addr(target.fam, value))
            }
        }
    }

    /// Releases the address `ip` of `network`. Returns `Ok(false)`, changing nothing, when the
    /// address (or the network) is not allocated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCidr`] when host bits are set, [`Error::IpOutsideNetwork`] when `ip` is
    /// not in `network`.
    pub fn release_ip(&mut self, network: IpNetwork, ip: IpAddr) -> Result<bool> {
        let target = Prefix::canonical(network)?;
        if !target.contains_addr(ip) {
            return Err(Error::IpOutsideNetwork { ip, network });
        }
        Ok(self
            .node_mut(target)
            .filter(|n| n.is_acquired())
            .and_then(|n| n.ips.as_mut())
            .is_some_and(|ips| ips.remove(to_u128(ip))))
    }

    /// Whether `ip` is allocated in the acquired network `network`.
    #[must_use]
    pub fn is_ip_allocated(&self, network: IpNetwork, ip: IpAddr) -> bool {
        let Ok(target) = Prefix::canonical(network) else {
            return false;
        };
        target.contains_addr(ip)
            && self
                .node(target)
                .filter(|n| n.is_acquired())
                .and_then(|n| n.ips.as_ref())
                .is_some_and(|ips| ips.contains(to_u128(ip)))
    }

    /// The networks currently acquired and tracked (each shared network once, whatever its
    /// reference count), sorted.
    #[must_use]
    pub fn networks(&self) -> Vec<IpNetwork> {
        let mut out: Vec<IpNetwork> = self.covering.keys().copied().collect();
        for pool in &self.pools {
            collect_acquired(&pool.root, pool.prefix, &mut out);
        }
        out.sort_unstable();
        out
    }

    /// The addresses allocated in the acquired network `network`, sorted (empty when it is not
    /// acquired).
    #[must_use]
    pub fn ips(&self, network: IpNetwork) -> Vec<IpAddr> {
        let Ok(target) = Prefix::canonical(network) else {
            return Vec::new();
        };
        self.node(target)
            .filter(|n| n.is_acquired())
            .and_then(|n| n.ips.as_ref())
            .map(|ips| ips.iter().map(|v| to_addr(target.fam, v)).collect())
            .unwrap_or_default()
    }

    // -----------------------------------------------------------------------------------------

    /// The pool `target` lies in.
    fn pool_of(&self, target: Prefix) -> Option<usize> {
        self.pools.iter().position(|p| p.prefix.contains(target))
    }

    fn node(&self, target: Prefix) -> Option<&Node> {
        let pool = &self.pools[self.pool_of(target)?];
        find_node(&pool.root, pool.prefix, target)
    }

    fn node_mut(&mut self, target: Prefix) -> Option<&mut Node> {
        let i = self.pool_of(target)?;
        let pool = &mut self.pools[i];
        find_node_mut(&mut pool.root, pool.prefix, target)
    }

    /// The covering reservation that contains `pool`, for messages.
    fn covering_of(&self, pool: Prefix) -> Option<IpNetwork> {
        self.covering
            .keys()
            .copied()
            .find(|c| Prefix::canonical(*c).is_ok_and(|c| c.contains(pool)))
    }

    fn acquire_exact_in(&mut self, i: usize, target: Prefix, exclusive: bool) -> Result<()> {
        let covering = self.covering_of(self.pools[i].prefix);
        let pool = &mut self.pools[i];
        if exclusive && pool.covered > 0 {
            let by = covering.map_or_else(|| pool.prefix.network().to_string(), |c| c.to_string());
            return Err(Error::Unavailable {
                cidr: target.network(),
                reason: format!("it lies inside {by}, which is reserved"),
            });
        }
        check_exact(&pool.root, pool.prefix, target, exclusive).map_err(|c| {
            Error::Unavailable {
                cidr: target.network(),
                reason: c.reason(),
            }
        })?;
        acquire_exact(&mut pool.root, pool.prefix, target, exclusive);
        Ok(())
    }

    fn acquire_mutable(&mut self, home: Option<usize>, target: Prefix) -> Result<Prefix> {
        if let Some(i) = home {
            let pool = &mut self.pools[i];
            if pool.covered == 0 && check_exact(&pool.root, pool.prefix, target, true).is_ok() {
                acquire_exact(&mut pool.root, pool.prefix, target, true);
                return Ok(target);
            }
        }
        for pool in self
            .pools
            .iter_mut()
            .filter(|p| p.prefix.fam == target.fam && p.covered == 0)
        {
            if let Some(got) = allocate_first(&mut pool.root, pool.prefix, target.len) {
                return Ok(got);
            }
        }
        let same_family: Vec<IpNetwork> = self
            .pools
            .iter()
            .filter(|p| p.prefix.fam == target.fam)
            .map(|p| p.prefix.network())
            .collect();
        if same_family.is_empty() {
            let all: Vec<String> = self.pools().iter().map(ToString::to_string).collect();
            return Err(Error::FamilyMismatch {
                subject: format!("network {}", target.network()),
                other: format!("every pool ({})", all.join(", ")),
            });
        }
        Err(Error::PoolExhausted {
            prefix_len: target.len,
            pools: same_family,
        })
    }

    /// An immutable request outside every pool.
    fn reserve_outside(&mut self, target: Prefix, exclusive: bool) -> Result<IpNetwork> {
        let cidr = target.network();
        if exclusive {
            return Err(Error::OutsidePools(cidr));
        }
        let inner: Vec<usize> = (0..self.pools.len())
            .filter(|&i| target.contains(self.pools[i].prefix))
            .collect();
        for &i in &inner {
            let pool = &self.pools[i];
            let conflict = if pool.root.state == State::Exclusive {
                Some(pool.prefix)
            } else {
                find_below(&pool.root, pool.prefix, true).map(|(at, _)| at)
            };
            if let Some(at) = conflict {
                return Err(Error::Unavailable {
                    cidr,
                    reason: format!(
                        "it contains {}, which is allocated exclusively",
                        at.network()
                    ),
                });
            }
        }
        if !inner.is_empty() {
            for &i in &inner {
                self.pools[i].covered += 1;
            }
            *self.covering.entry(cidr).or_insert(0) += 1;
        }
        Ok(cidr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn mutable(s: &str) -> NetworkRequest {
        NetworkRequest::new(net(s))
    }

    fn reserve(s: &str) -> NetworkRequest {
        NetworkRequest::new(net(s)).immutable().shared()
    }

    fn take(ipam: &mut Ipam, req: NetworkRequest) -> String {
        ipam.acquire_network(&req).unwrap().to_string()
    }

    #[test]
    fn default_pools_match_the_constant() {
        let ipam = Ipam::with_default_pools();
        let parsed: Vec<IpNetwork> = Ipam::DEFAULT_POOLS.iter().map(|s| net(s)).collect();
        assert_eq!(ipam.pools(), parsed);
        assert_eq!(Ipam::new(parsed).unwrap().pools(), ipam.pools());
    }

    #[test]
    fn bad_pools_are_rejected() {
        assert!(matches!(Ipam::new([]), Err(Error::NoPools)));
        assert!(matches!(
            Ipam::new([net("10.0.0.0/8"), net("10.1.0.0/16")]),
            Err(Error::OverlappingPools(..))
        ));
        assert!(matches!(
            Ipam::new([net("10.0.0.0/15"), net("10.1.0.0/16")]),
            Err(Error::OverlappingPools(..))
        ));
        assert!(matches!(
            Ipam::new([net("10.0.1.0/8")]),
            Err(Error::InvalidCidr { .. })
        ));
        // Different families never overlap.
        assert!(Ipam::new([net("0.0.0.0/0"), net("::/0")]).is_ok());
    }

    #[test]
    fn parse_cidr_is_strict() {
        assert_eq!(parse_cidr(" fd00::/8 ").unwrap(), net("fd00::/8"));
        assert!(matches!(
            parse_cidr("10.0.0.0"),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0/8"),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0.0/x"),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            parse_cidr("10.0.0.0/33"),
            Err(Error::InvalidPrefixLength {
                prefix_len: 33,
                max: 32,
                ..
            })
        ));
        assert!(matches!(
            parse_cidr("::/300"),
            Err(Error::InvalidPrefixLength {
                prefix_len: 300,
                max: 128,
                ..
            })
        ));
        let err = parse_cidr("10.0.0.1/8").unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/8"), "{err}");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), net("0.0.0.0/0"));
        assert_eq!(parse_cidr("1.2.3.4/32").unwrap(), net("1.2.3.4/32"));
    }

    #[test]
    fn sequential_mutable_requests_pack_left_first() {
        let mut ipam = Ipam::with_default_pools();
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "10.0.0.0/24");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "10.0.1.0/24");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/25")), "10.0.2.0/25");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/16")), "10.1.0.0/16");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/9")), "10.128.0.0/9");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/25")), "10.0.2.128/25");
        // A free preferred CIDR is taken as is.
        assert_eq!(take(&mut ipam, mutable("192.168.7.0/24")), "192.168.7.0/24");
        // Outside the pools: remapped into them.
        assert_eq!(take(&mut ipam, mutable("11.0.0.0/24")), "10.0.3.0/24");
        assert_eq!(
            ipam.networks(),
            [
                "10.0.0.0/24",
                "10.0.1.0/24",
                "10.0.2.0/25",
                "10.0.2.128/25",
                "10.0.3.0/24",
                "10.1.0.0/16",
                "10.128.0.0/9",
                "192.168.7.0/24"
            ]
            .map(net)
        );
    }

    #[test]
    fn the_search_prefers_already_split_halves_like_upstream() {
        let mut ipam = Ipam::with_default_pools();
        take(
            &mut ipam,
            NetworkRequest::new(net("10.128.0.0/16")).immutable(),
        );
        // 10.0.0.0/9 is untouched while 10.128.0.0/9 is split: upstream goes right.
        assert_eq!(take(&mut ipam, mutable("10.128.0.0/24")), "10.129.0.0/24");
        // Releasing holes: the split half is still preferred over a merged free one.
        let mut ipam = Ipam::with_default_pools();
        for _ in 0..3 {
            take(&mut ipam, mutable("10.0.0.0/24"));
        }
        ipam.release_network(net("10.0.0.0/24")).unwrap();
        ipam.release_network(net("10.0.1.0/24")).unwrap();
        assert_eq!(take(&mut ipam, mutable("10.0.2.0/24")), "10.0.3.0/24");
        assert_eq!(take(&mut ipam, mutable("10.0.2.0/24")), "10.0.0.0/24");
    }

    #[test]
    fn pools_are_searched_in_order_and_exhaust() {
        let mut ipam = Ipam::new([net("192.168.0.0/23"), net("10.0.0.0/24")]).unwrap();
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "10.0.0.0/24");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "192.168.0.0/24");
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "192.168.1.0/24");
        let before = ipam.networks();
        let err = ipam.acquire_network(&mutable("10.0.0.0/24")).unwrap_err();
        assert!(
            matches!(&err, Error::PoolExhausted { prefix_len: 24, pools } if pools.len() == 2),
            "{err}"
        );
        assert!(matches!(
            ipam.acquire_network(&mutable("10.0.0.0/22")),
            Err(Error::PoolExhausted { .. })
        ));
        assert_eq!(ipam.networks(), before);
        // Released space is reused at once.
        assert!(ipam.release_network(net("192.168.0.0/24")).unwrap());
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/24")), "192.168.0.0/24");
        // Release everything: the /23 merges back and can be taken whole.
        for n in ipam.networks() {
            assert!(ipam.release_network(n).unwrap());
        }
        assert!(ipam.networks().is_empty());
        assert_eq!(take(&mut ipam, mutable("172.16.0.0/23")), "192.168.0.0/23");
    }

    #[test]
    fn immutable_exclusive_conflicts() {
        let mut ipam = Ipam::with_default_pools();
        let excl = |s: &str| NetworkRequest::new(net(s)).immutable();
        take(&mut ipam, excl("10.50.0.0/16"));
        for (cidr, why) in [
            ("10.50.0.0/16", "already allocated exclusively"),
            ("10.50.1.0/24", "inside 10.50.0.0/16"),
            ("10.0.0.0/8", "contains 10.50.0.0/16"),
        ] {
            let err = ipam.acquire_network(&excl(cidr)).unwrap_err();
            assert!(
                matches!(err, Error::Unavailable { .. }) && err.to_string().contains(why),
                "{cidr}: {err}"
            );
            let err = ipam.acquire_network(&reserve(cidr)).unwrap_err();
            assert!(matches!(err, Error::Unavailable { .. }), "{cidr}: {err}");
        }
        // Shared reservations block exclusive ones on themselves, above and below.
        take(&mut ipam, reserve("10.60.0.0/16"));
        for cidr in ["10.60.0.0/16", "10.60.3.0/24", "10.0.0.0/8"] {
            assert!(
                matches!(
                    ipam.acquire_network(&excl(cidr)),
                    Err(Error::Unavailable { .. })
                ),
                "{cidr}"
            );
            assert!(!ipam.is_network_available(net(cidr)));
        }
        // Outside the pools, exclusive is refused.
        assert!(matches!(
            ipam.acquire_network(&excl("11.0.0.0/16")),
            Err(Error::OutsidePools(_))
        ));
        assert!(ipam.is_network_available(net("10.61.0.0/16")));
        assert!(!ipam.is_network_available(net("11.0.0.0/16")));
    }

    #[test]
    fn shared_reservations_are_reference_counted_and_nest() {
        let mut ipam = Ipam::with_default_pools();
        assert_eq!(take(&mut ipam, reserve("10.20.0.0/16")), "10.20.0.0/16");
        assert_eq!(take(&mut ipam, reserve("10.20.0.0/16")), "10.20.0.0/16");
        assert_eq!(take(&mut ipam, reserve("10.0.0.0/8")), "10.0.0.0/8");
        assert_eq!(take(&mut ipam, reserve("10.20.0.0/17")), "10.20.0.0/17");
        assert_eq!(
            ipam.networks(),
            [net("10.0.0.0/8"), net("10.20.0.0/16"), net("10.20.0.0/17")]
        );
        // Nothing mutable lands in the reserved /8.
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/16")), "172.16.0.0/16");
        assert!(ipam.release_network(net("10.0.0.0/8")).unwrap());
        assert!(ipam.release_network(net("10.20.0.0/16")).unwrap());
        assert_eq!(
            ipam.networks().len(),
            3,
            "one reference to 10.20.0.0/16 is left"
        );
        assert!(ipam.release_network(net("10.20.0.0/16")).unwrap());
        assert!(!ipam.release_network(net("10.20.0.0/16")).unwrap());
        assert!(ipam.release_network(net("10.20.0.0/17")).unwrap());
        assert!(!ipam.release_network(net("10.20.0.0/17")).unwrap());
        assert_eq!(ipam.networks(), [net("172.16.0.0/16")]);
        assert_eq!(take(&mut ipam, mutable("10.0.0.0/16")), "10.0.0.0/16");
    }

    #[test]
    fn reservations_outside_the_pools() {
        let mut ipam = Ipam::with_default_pools();
        // Disjoint from every pool: accepted, untracked.
        assert_eq!(take(&mut ipam, reserve("100.64.0.0/10")), "100.64.0.0/10");
        assert!(ipam.networks().is_empty());
        assert!(!ipam.release_network(net("100.64.0.0/10")).unwrap());
        assert!(matches!(
            ipam.acquire_ip(net("100.64.0.0/10"), None),
            Err(Error::NotAllocated(_))
        ));
        // Containing a whole pool: that pool is reserved until released.
        assert_eq!(take(&mut ipam, reserve("10.0.0.0/7")), "10.0.0.0/7");
        assert_eq!(ipam.networks(), [net("10.0.0.0/7")]);
        assert!(!ipam.is_network_available(net("10.1.0.0/16")));
        assert_eq!(take(&mut ipam, mutable("10.1.0.0/16")), "172.16.0.0/16");
        assert!(matches!(
            ipam.acquire_network(&NetworkRequest::new(net("10.1.0.0/16")).immutable()),
            Err(Error::Unavailable { .. })
        ));
        assert_eq!(take(&mut ipam, reserve("10.1.0.0/16")), "10.1.0.0/16");
        assert!(ipam.release_network(net("10.0.0.0/7")).unwrap());
        assert!(!ipam.release_network(net("10.0.0.0/7")).unwrap());
        assert_eq!(take(&mut ipam, mutable("10.1.0.0/16")), "10.0.0.0/16");
        // A covering reservation over an exclusive allocation is refused.
        let err = ipam.acquire_network(&reserve("0.0.0.0/0")).unwrap_err();
        assert!(err.to_string().contains("contains 10.0.0.0/16"), "{err}");
    }

    #[test]
    fn bad_requests_change_nothing() {
        let mut ipam = Ipam::with_default_pools();
        take(&mut ipam, mutable("10.0.0.0/24"));
        let before = ipam.networks();
        assert!(matches!(
            ipam.acquire_network(&mutable("10.0.0.1/24")),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(matches!(
            ipam.acquire_network(&mutable("10.0.0.0/30").pre_allocated(5)),
            Err(Error::PreAllocatedTooLarge {
                pre_allocated: 5,
                prefix_len: 30
            })
        ));
        assert!(matches!(
            ipam.acquire_network(&mutable("fd00::/64")),
            Err(Error::FamilyMismatch { .. })
        ));
        assert!(matches!(
            ipam.release_network(net("10.0.0.1/24")),
            Err(Error::InvalidCidr { .. })
        ));
        assert!(!ipam.is_network_available(net("10.0.0.1/24")));
        assert_eq!(ipam.networks(), before);
    }

    #[test]
    fn pre_allocation_reserves_the_first_addresses() {
        let mut ipam = Ipam::with_default_pools();
        let ext = ipam
            .acquire_network(&mutable("10.70.0.0/16").pre_allocated(3))
            .unwrap();
        assert_eq!(
            ipam.ips(ext),
            [ip("10.70.0.0"), ip("10.70.0.1"), ip("10.70.0.2")]
        );
        assert_eq!(ipam.acquire_ip(ext, None).unwrap(), ip("10.70.0.3"));
        // A /30 can pre-allocate all of its 4 addresses, and is then full.
        let small = ipam
            .acquire_network(&mutable("192.168.0.0/30").pre_allocated(4))
            .unwrap();
        assert!(matches!(
            ipam.acquire_ip(small, None),
            Err(Error::NetworkFull(_))
        ));
        // A shared reservation acquired again keeps its pre-allocated addresses once.
        let shared = NetworkRequest::new(net("10.80.0.0/16"))
            .immutable()
            .shared()
            .pre_allocated(2);
        ipam.acquire_network(&shared).unwrap();
        ipam.acquire_network(&shared.clone().pre_allocated(3))
            .unwrap();
        assert_eq!(ipam.ips(net("10.80.0.0/16")).len(), 3);
        // Releasing the network releases its addresses.
        ipam.release_network(ext).unwrap();
        let again = ipam.acquire_network(&mutable("10.70.0.0/16")).unwrap();
        assert!(ipam.ips(again).is_empty());
    }

    #[test]
    fn ips_round_robin_and_hints() {
        let mut ipam = Ipam::with_default_pools();
        let n = ipam.acquire_network(&mutable("10.0.0.0/30")).unwrap();
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.0"));
        assert_eq!(
            ipam.acquire_ip(n, Some(ip("10.0.0.2"))).unwrap(),
            ip("10.0.0.2")
        );
        assert!(matches!(
            ipam.acquire_ip(n, Some(ip("10.0.0.2"))),
            Err(Error::IpUnavailable { .. })
        ));
        assert!(matches!(
            ipam.acquire_ip(n, Some(ip("10.0.0.4"))),
            Err(Error::IpOutsideNetwork { .. })
        ));
        assert!(matches!(
            ipam.acquire_ip(n, Some(ip("fd00::1"))),
            Err(Error::IpOutsideNetwork { .. })
        ));
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.1"));
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.3"));
        assert!(matches!(
            ipam.acquire_ip(n, None),
            Err(Error::NetworkFull(_))
        ));
        assert!(ipam.release_ip(n, ip("10.0.0.1")).unwrap());
        assert!(!ipam.release_ip(n, ip("10.0.0.1")).unwrap());
        assert!(!ipam.is_ip_allocated(n, ip("10.0.0.1")));
        assert!(ipam.is_ip_allocated(n, ip("10.0.0.2")));
        // Wraps around to the only free address.
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.1"));
        ipam.release_ip(n, ip("10.0.0.0")).unwrap();
        ipam.release_ip(n, ip("10.0.0.3")).unwrap();
        // Round robin: after 10.0.0.1, the next free one is 10.0.0.3, then 10.0.0.0.
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.3"));
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("10.0.0.0"));
        assert_eq!(ipam.ips(n).len(), 4);
        // Not allocated networks.
        assert!(matches!(
            ipam.acquire_ip(net("10.1.0.0/24"), None),
            Err(Error::NotAllocated(_))
        ));
        assert!(matches!(
            ipam.acquire_ip(net("10.0.0.0/31"), None),
            Err(Error::NotAllocated(_))
        ));
        assert!(!ipam.release_ip(net("10.1.0.0/24"), ip("10.1.0.1")).unwrap());
        assert!(matches!(
            ipam.release_ip(n, ip("10.1.0.1")),
            Err(Error::IpOutsideNetwork { .. })
        ));
    }

    #[test]
    fn ip_acquisition_in_a_big_network_does_not_scan() {
        let mut ipam = Ipam::new([net("fd00::/8")]).unwrap();
        let n = ipam
            .acquire_network(&NetworkRequest::new(net("fd00::/8")).pre_allocated(u32::MAX))
            .unwrap();
        // Four billion addresses reserved as one range: the next one is found at once.
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("fd00::ffff:ffff"));
        for _ in 0..1000 {
            ipam.acquire_ip(n, None).unwrap();
        }
        assert_eq!(ipam.acquire_ip(n, None).unwrap(), ip("fd00::1:0:3e8"));
    }

    #[test]
    fn ipv6_pools() {
        let mut ipam = Ipam::new([net("10.0.0.0/8"), net("fd00::/8")]).unwrap();
        assert_eq!(take(&mut ipam, mutable("fd00::/64")), "fd00::/64");
        assert_eq!(take(&mut ipam, mutable("fd00::/64")), "fd00:0:0:1::/64");
        assert_eq!(take(&mut ipam, mutable("2001:db8::/64")), "fd00:0:0:2::/64");
        let full = ipam.acquire_network(&mutable("fd00::/8")).unwrap_err();
        assert!(matches!(full, Error::PoolExhausted { prefix_len: 8, .. }));
        // Host routes: /128 networks and addresses.
        let host = ipam.acquire_network(&mutable("fd00::/128")).unwrap();
        assert_eq!(host.prefix(), 128);
        assert_eq!(ipam.acquire_ip(host, None).unwrap(), host.ip());
        assert!(matches!(
            ipam.acquire_ip(host, None),
            Err(Error::NetworkFull(_))
        ));
        // A whole-family pool.
        let mut ipam = Ipam::new([net("::/0")]).unwrap();
        let all = ipam
            .acquire_network(&mutable("::/0").pre_allocated(2))
            .unwrap();
        assert_eq!(ipam.acquire_ip(all, None).unwrap(), ip("::2"));
        assert_eq!(
            ipam.acquire_ip(all, Some(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")))
                .unwrap(),
            ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")
        );
        assert!(ipam.release_network(all).unwrap());
        assert_eq!(take(&mut ipam, mutable("::/1")), "::/1");
        assert_eq!(take(&mut ipam, mutable("::/1")), "8000::/1");
    }

    #[test]
    fn edge_prefix_lengths_v4() {
        let mut ipam = Ipam::new([net("0.0.0.0/0")]).unwrap();
        assert_eq!(take(&mut ipam, mutable("1.2.3.4/32")), "1.2.3.4/32");
        // The search follows the split path: the neighbour, not 0.0.0.0/32.
        assert_eq!(take(&mut ipam, mutable("1.2.3.4/32")), "1.2.3.5/32");
        assert!(matches!(
            ipam.acquire_network(&mutable("0.0.0.0/0")),
            Err(Error::PoolExhausted { .. })
        ));
        ipam.release_network(net("1.2.3.4/32")).unwrap();
        ipam.release_network(net("1.2.3.5/32")).unwrap();
        assert_eq!(take(&mut ipam, mutable("0.0.0.0/0")), "0.0.0.0/0");
        let last = ipam
            .acquire_ip(net("0.0.0.0/0"), Some(ip("255.255.255.255")))
            .unwrap();
        assert_eq!(last, ip("255.255.255.255"));
    }

    #[test]
    fn the_tree_stays_small() {
        let mut ipam = Ipam::with_default_pools();
        let mut got = Vec::new();
        for _ in 0..1000 {
            got.push(ipam.acquire_network(&mutable("10.0.0.0/24")).unwrap());
        }
        for n in got {
            ipam.release_network(n).unwrap();
        }
        assert!(
            ipam.pools
                .iter()
                .all(|p| p.root.children.is_none() && p.root.best == p.prefix.len)
        );
    }

    #[test]
    fn debug_lists_pools_and_networks() {
        let mut ipam = Ipam::with_default_pools();
        take(&mut ipam, mutable("10.0.0.0/24"));
        let s = format!("{ipam:?}");
        assert!(
            s.contains("10.0.0.0/24") && s.contains("192.168.0.0/16"),
            "{s}"
        );
    }
}
