//! The differential runner shared by the proptest (`tests/differential.rs`), the stress
//! test's final check and the `ops` fuzz target: a small operation language decoded from
//! bytes, a `BTreeMap`-based model of RTMv2 semantics, and a runner that applies every
//! operation to both and compares every result.
#![allow(dead_code)]

use rtm::*;
use std::collections::BTreeMap;

pub const SUPPORTED: ViewSet = ViewSet::from_bits(0b11);
pub const MAX_NH: u32 = 2;

pub fn rtm() -> Rtm {
    Rtm::builder().max_next_hops_in_route(MAX_NH).views(SUPPORTED).build().unwrap()
}

/// Decodes a small IPv4 prefix space in which prefixes nest and collide often.
pub fn prefix(b: &[u8; 5]) -> NetAddress {
    prefix_in(b, AddressFamily::Ipv4)
}

/// [`prefix`] in either family. The IPv6 space has the IPv4 one's shape one byte deeper,
/// around its top table's depth (3 bytes, IPv4's 2): the varying bytes are 2 to 5, and
/// the lengths straddle the upper trie (/24 and shorter) and the nodes below.
pub fn prefix_in(b: &[u8; 5], fam: AddressFamily) -> NetAddress {
    match fam {
        AddressFamily::Ipv4 => {
            const LENS: [u8; 8] = [0, 8, 12, 16, 20, 24, 30, 32];
            let a = [10 + b[0] % 2, b[1] % 3, b[2] % 3 * 64, b[3] % 4];
            NetAddress::v4(a.into(), LENS[(b[4] % 8) as usize]).unwrap()
        }
        AddressFamily::Ipv6 => {
            const LENS: [u8; 8] = [0, 16, 20, 24, 28, 32, 40, 48];
            let mut a = [0u8; 16];
            a[..6].copy_from_slice(&[0x20, 0x01, 0x0d + b[0] % 2, b[1] % 3, b[2] % 3 * 64, b[3] % 4]);
            NetAddress::new(fam, &a, LENS[(b[4] % 8) as usize]).unwrap()
        }
    }
}

pub fn host(b: &[u8; 5]) -> NetAddress {
    host_in(b, AddressFamily::Ipv4)
}

/// A host address inside [`prefix_in`]'s prefix.
pub fn host_in(b: &[u8; 5], fam: AddressFamily) -> NetAddress {
    let p = prefix_in(b, fam);
    NetAddress::new(fam, p.bytes(), fam.max_len()).unwrap()
}

fn views(b: u8) -> ViewSet {
    // 1, 2, 3 valid; 0 invalid; 4 unsupported.
    ViewSet::from_bits([1, 2, 3, 1, 3, 0, 4, 1][(b % 8) as usize])
}

fn query_views(b: u8) -> ViewSet {
    ViewSet::from_bits([0, 1, 2, 3, 4][(b % 5) as usize])
}

fn neighbour(b: u8) -> Option<NextHop> {
    match b % 3 {
        0 => None,
        n => Some(NextHop::new(NetAddress::v4([192, 0, 2, n].into(), 32).unwrap(), n as u32)),
    }
}

fn params(b: &[u8]) -> RouteParams {
    let mut p = RouteParams::new((b[0] % 4) as u32, (b[1] % 4) as u32).views(views(b[2]));
    p.neighbour = neighbour(b[3]);
    for i in 0..(b[4] % 4) {
        p.next_hops.push(NextHop::new(NetAddress::v4([198, 51, 100, i].into(), 32).unwrap(), i as u32 + 1));
    }
    p.flags = (b[5] % 4) as u16;
    p
}

/// One operation.
#[derive(Clone, Debug)]
pub enum Op {
    Register(usize),
    Deregister(usize),
    Add {
        entity: usize,
        prefix: NetAddress,
        params: RouteParams,
        mode: AddMode,
    },
    /// `EntityRef::add_routes`: the same as `Add` (mode `Normal`) for each item in order.
    AddBatch {
        entity: usize,
        items: Vec<(NetAddress, RouteParams)>,
    },
    Update {
        slot: usize,
        entity: usize,
        params: RouteParams,
    },
    Delete {
        slot: usize,
        entity: usize,
    },
    /// `EntityRef::delete_routes`: the same as `Delete` for each slot in order.
    DeleteBatch {
        slots: Vec<usize>,
        entity: usize,
    },
    /// `EntityRef::insert_route_with`: `Add` without a handle.
    Insert {
        entity: usize,
        prefix: NetAddress,
        params: RouteParams,
        mode: AddMode,
    },
    /// `EntityRef::insert_routes`: `Insert` (mode `Normal`) for each item in order.
    InsertBatch {
        entity: usize,
        items: Vec<(NetAddress, RouteParams)>,
    },
    /// `EntityRef::withdraw_route`: delete by identity (prefix, owner, neighbour).
    Withdraw {
        entity: usize,
        prefix: NetAddress,
        neighbour: Option<NextHop>,
    },
    /// `EntityRef::withdraw_routes`: `Withdraw` for each item in order.
    WithdrawBatch {
        entity: usize,
        items: Vec<(NetAddress, Option<NextHop>)>,
    },
    CloneHandle(usize),
    DropHandle(usize),
    Get(NetAddress, ViewSet),
    MostSpecific(NetAddress, ViewSet),
    LessSpecific(NetAddress, ViewSet),
    Lookup(NetAddress, ViewId),
    GetRoute(NetAddress, RouteMatch),
}

pub const ENTITIES: usize = 3;

pub fn entity_id(i: usize) -> EntityId {
    // Protocol ids deliberately out of slot order, so the tie-break is exercised.
    EntityId::new([7, 3, 5, 9, 2, 11, 4, 6][i], i as u32)
}

/// Decodes operations from bytes; every byte string is a valid program.
pub fn decode(data: &[u8]) -> Vec<Op> {
    decode_in(data, AddressFamily::Ipv4)
}

/// [`decode`] with the prefixes of family `fam` ([`prefix_in`]).
pub fn decode_in(data: &[u8], fam: AddressFamily) -> Vec<Op> {
    let prefix = |b: &[u8; 5]| prefix_in(b, fam);
    let host = |b: &[u8; 5]| host_in(b, fam);
    let mut ops = Vec::new();
    for c in data.chunks_exact(12) {
        let pb: [u8; 5] = [c[2], c[3], c[4], c[5], c[6]];
        let e = (c[1] as usize) % ENTITIES;
        // The handle-less forms of the add, batch add and delete operations.
        let lone = (c[1] as usize / ENTITIES) % 2 == 1;
        let op = match c[0] % 16 {
            0 => Op::Register(e),
            1 => Op::Deregister(e),
            5 => {
                // 1-4 prefixes around the first (siblings and nested ones, repeats possible).
                let items = (0..1 + c[10] % 4)
                    .map(|k| {
                        let b = [pb[0], pb[1].wrapping_add(k), pb[2] ^ k, pb[3], pb[4].wrapping_add(k * 3)];
                        (prefix(&b), params(&c[6..12]))
                    })
                    .collect();
                if lone {
                    Op::InsertBatch { entity: e, items }
                } else {
                    Op::AddBatch { entity: e, items }
                }
            }
            2..=4 => {
                let (prefix, params) = (prefix(&pb), params(&c[6..12]));
                let mode = match c[11] % 8 {
                    6 => AddMode::First,
                    7 => AddMode::New,
                    _ => AddMode::Normal,
                };
                if lone {
                    Op::Insert { entity: e, prefix, params, mode }
                } else {
                    Op::Add { entity: e, prefix, params, mode }
                }
            }
            6 => Op::Update { slot: c[2] as usize, entity: e, params: params(&c[6..12]) },
            7 if !lone && c[3] % 3 == 0 => Op::DeleteBatch {
                slots: c[4..4 + 1 + (c[5] % 4) as usize].iter().map(|&b| b as usize).collect(),
                entity: e,
            },
            7 if lone && c[3] % 3 == 0 => Op::WithdrawBatch {
                entity: e,
                // As `AddBatch`'s prefixes (repeats possible), each with a neighbour.
                items: (0..1 + c[10] % 4)
                    .map(|k| {
                        let b = [pb[0], pb[1].wrapping_add(k), pb[2] ^ k, pb[3], pb[4].wrapping_add(k * 3)];
                        (prefix(&b), neighbour(c[8].wrapping_add(k / 2)))
                    })
                    .collect(),
            },
            7 if lone => Op::Withdraw { entity: e, prefix: prefix(&pb), neighbour: neighbour(c[8]) },
            7 => Op::Delete { slot: c[2] as usize, entity: e },
            8 => Op::CloneHandle(c[2] as usize),
            9 => Op::DropHandle(c[2] as usize),
            10 => Op::Get(prefix(&pb), query_views(c[7])),
            11 => Op::MostSpecific(if c[8] % 2 == 0 { host(&pb) } else { prefix(&pb) }, query_views(c[7])),
            12 => Op::LessSpecific(prefix(&pb), query_views(c[7])),
            13 | 14 => Op::Lookup(host(&pb), if c[7] % 2 == 0 { ViewId::UNICAST } else { ViewId::MULTICAST }),
            _ => Op::GetRoute(
                prefix(&pb),
                RouteMatch {
                    owner: (c[8] % 2 == 0).then(|| entity_id(e)),
                    neighbour: (c[9] % 3 == 0).then(|| neighbour(c[10])),
                    preference: (c[9] % 5 == 0).then(|| ((c[10] % 4) as u32, (c[11] % 4) as u32)),
                    ..Default::default()
                },
            ),
        };
        ops.push(op);
    }
    ops
}

/// A route in the model.
#[derive(Clone, Debug, PartialEq)]
pub struct MRoute {
    pub id: u64,
    pub owner: usize,
    pub seq: u64,
    pub p: RouteParams,
}

impl MRoute {
    fn key(&self) -> (u32, u32, EntityId, Option<NextHop>, u64) {
        (self.p.preference, self.p.metric, entity_id(self.owner), self.p.neighbour, self.seq)
    }
}

#[derive(Default, Debug)]
pub struct MDest {
    pub routes: Vec<MRoute>,
    pub next_seq: u64,
}

impl MDest {
    fn sorted(&self) -> Vec<&MRoute> {
        let mut v: Vec<_> = self.routes.iter().collect();
        v.sort_by_key(|r| r.key());
        v
    }
    fn best(&self, v: ViewId) -> Option<&MRoute> {
        self.sorted().into_iter().find(|r| r.p.views.contains(v))
    }
    fn has_in(&self, views: ViewSet) -> bool {
        if views.is_empty() {
            !self.routes.is_empty()
        } else {
            self.routes.iter().any(|r| r.p.views.intersects(views))
        }
    }
}

/// The reference model.
#[derive(Default, Debug)]
pub struct Model {
    pub dests: BTreeMap<NetAddress, MDest>,
    pub registered: [bool; ENTITIES],
    /// Registration generation per entity slot: a route belongs to one registration.
    pub gen: [u64; ENTITIES],
    next_id: u64,
    /// Last known contents and state of every route id (for deleted-route reads).
    pub last: BTreeMap<u64, (NetAddress, RouteParams, bool)>,
}

impl Model {
    fn best_ids(&self, a: &NetAddress) -> Vec<Option<u64>> {
        let d = self.dests.get(a);
        SUPPORTED.iter().map(|v| d.and_then(|d| d.best(v)).map(|r| r.id)).collect()
    }

    fn flags(&self, a: &NetAddress, before: &[Option<u64>], id: u64, new: bool) -> ChangeFlags {
        let after = self.best_ids(a);
        let best = before.iter().zip(&after).any(|(o, n)| o != n || *o == Some(id) || *n == Some(id));
        ChangeFlags { new, best }
    }

    fn check_params(&self, e: usize, p: &RouteParams) -> Result<()> {
        if !self.registered[e] {
            return Err(Error::InvalidHandle);
        }
        if p.views.is_empty() || p.next_hops.len() > MAX_NH as usize {
            return Err(Error::InvalidParameter);
        }
        if !SUPPORTED.is_superset(p.views) {
            return Err(Error::NotSupported);
        }
        Ok(())
    }

    pub fn add(
        &mut self,
        e: usize,
        a: NetAddress,
        p: RouteParams,
        mode: AddMode,
    ) -> Result<(u64, ChangeFlags)> {
        self.check_params(e, &p)?;
        let before = self.best_ids(&a);
        let d = self.dests.entry(a).or_default();
        let existing = match mode {
            AddMode::Normal => d
                .routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.owner == e && r.p.neighbour == p.neighbour)
                .min_by_key(|(_, r)| r.seq)
                .map(|(i, _)| i),
            AddMode::First => d
                .routes
                .iter()
                .enumerate()
                .filter(|(_, r)| r.owner == e)
                .min_by_key(|(_, r)| r.seq)
                .map(|(i, _)| i),
            AddMode::New => None,
        };
        let (id, new) = match existing {
            Some(i) => {
                d.routes[i].p = p.clone();
                (d.routes[i].id, false)
            }
            None => {
                self.next_id += 1;
                d.routes.push(MRoute { id: self.next_id, owner: e, seq: d.next_seq, p: p.clone() });
                d.next_seq += 1;
                (self.next_id, true)
            }
        };
        self.last.insert(id, (a, p, true));
        Ok((id, self.flags(&a, &before, id, new)))
    }

    fn find(&self, id: u64) -> Option<(NetAddress, usize)> {
        let (a, _, live) = self.last.get(&id)?;
        if !live {
            return None;
        }
        let i = self.dests.get(a)?.routes.iter().position(|r| r.id == id)?;
        Some((*a, i))
    }

    pub fn update(&mut self, e: usize, id: u64, owner: (usize, u64), p: RouteParams) -> Result<ChangeFlags> {
        self.check_params(e, &p)?;
        if owner != (e, self.gen[e]) {
            return Err(Error::AccessDenied);
        }
        let (a, i) = self.find(id).ok_or(Error::NotFound)?;
        let before = self.best_ids(&a);
        self.dests.get_mut(&a).unwrap().routes[i].p = p.clone();
        self.last.insert(id, (a, p, true));
        Ok(self.flags(&a, &before, id, false))
    }

    pub fn delete(&mut self, e: usize, id: u64, owner: (usize, u64)) -> Result<ChangeFlags> {
        if !self.registered[e] {
            return Err(Error::InvalidHandle);
        }
        if owner != (e, self.gen[e]) {
            return Err(Error::AccessDenied);
        }
        self.remove(id).ok_or(Error::NotFound)
    }

    fn remove(&mut self, id: u64) -> Option<ChangeFlags> {
        let (a, i) = self.find(id)?;
        let before = self.best_ids(&a);
        let d = self.dests.get_mut(&a).unwrap();
        d.routes.remove(i);
        if d.routes.is_empty() {
            self.dests.remove(&a);
        }
        self.last.get_mut(&id).unwrap().2 = false;
        Some(self.flags(&a, &before, id, false))
    }

    /// The oldest route of `e` on `a` with neighbour `n`, removed.
    pub fn withdraw(&mut self, e: usize, a: NetAddress, n: Option<NextHop>) -> Result<ChangeFlags> {
        if !self.registered[e] {
            return Err(Error::InvalidHandle);
        }
        let id = self
            .dests
            .get(&a)
            .and_then(|d| {
                d.routes.iter().filter(|r| r.owner == e && r.p.neighbour == n).min_by_key(|r| r.seq)
            })
            .map(|r| r.id)
            .ok_or(Error::NotFound)?;
        self.remove(id).ok_or(Error::NotFound)
    }

    pub fn deregister(&mut self, e: usize) -> Result<()> {
        if !self.registered[e] {
            return Err(Error::InvalidHandle);
        }
        self.registered[e] = false;
        let ids: Vec<u64> = self
            .dests
            .values()
            .flat_map(|d| d.routes.iter())
            .filter(|r| r.owner == e)
            .map(|r| r.id)
            .collect();
        for id in ids {
            self.remove(id);
        }
        Ok(())
    }

    /// Candidates covering `a` with length <= a.len(), longest first.
    fn covering(&self, a: &NetAddress, max: u8) -> impl Iterator<Item = (&NetAddress, &MDest)> {
        let a = *a;
        (0..=max).rev().filter_map(move |l| self.dests.get_key_value(&a.truncate(l)))
    }
}

/// A handle slot of the runner: the model id, the owner slot, and the engine's handle.
pub struct Slot {
    pub id: u64,
    pub owner: (usize, u64),
    pub r: RouteRef,
}

pub struct Runner {
    pub rtm: Rtm,
    /// The family of the table the program runs on.
    pub fam: AddressFamily,
    pub entities: [Option<EntityRef>; ENTITIES],
    pub model: Model,
    pub slots: Vec<Slot>,
}

fn fmt_err<T>(r: &Result<T>) -> Option<Error> {
    r.as_ref().err().copied()
}

impl Runner {
    pub fn new() -> Self {
        Self::new_in(AddressFamily::Ipv4)
    }

    /// A runner whose programs run on the table of family `fam`.
    pub fn new_in(fam: AddressFamily) -> Self {
        Self { rtm: rtm(), fam, entities: [None, None, None], model: Model::default(), slots: Vec::new() }
    }

    fn table(&self) -> &Table {
        self.rtm.table(self.fam)
    }

    /// The handle of entity slot `e`, or a stale clone (kept after deregistration).
    fn entity(&self, e: usize) -> Option<&EntityRef> {
        self.entities[e].as_ref()
    }

    fn slot(&self, s: usize) -> Option<usize> {
        (!self.slots.is_empty()).then(|| s % self.slots.len())
    }

    /// Applies one operation to both and panics on the first divergence.
    pub fn apply(&mut self, op: &Op) {
        match op {
            Op::Register(e) => {
                let got = self.table().register(entity_id(*e));
                let want = if self.model.registered[*e] { Err(Error::AlreadyExists) } else { Ok(()) };
                assert_eq!(fmt_err(&got), fmt_err(&want), "{op:?}");
                if let Ok(h) = got {
                    self.model.registered[*e] = true;
                    self.model.gen[*e] += 1;
                    self.entities[*e] = Some(h);
                }
            }
            Op::Deregister(e) => {
                let Some(h) = self.entity(*e) else { return };
                let got = h.deregister();
                assert_eq!(got, self.model.deregister(*e), "{op:?}");
            }
            Op::Add { entity, prefix, params, mode } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let got = h.add_route_with(prefix, params.clone(), *mode);
                let want = self.model.add(*entity, *prefix, params.clone(), *mode);
                match (got, want) {
                    (Ok((r, gf)), Ok((id, wf))) => {
                        assert_eq!(gf, wf, "{op:?}");
                        if let Some(s) = self.slots.iter().find(|s| s.id == id) {
                            assert!(
                                s.r.ptr_eq(&r),
                                "identity kept: {op:?} model id {id} slot {:?} got {:?}",
                                s.r,
                                r
                            );
                        }
                        if self.slots.len() < 64 {
                            let owner = (*entity, self.model.gen[*entity]);
                            self.slots.push(Slot { id, owner, r });
                        }
                    }
                    (g, w) => assert_eq!(fmt_err(&g), fmt_err(&w), "{op:?}"),
                }
            }
            Op::AddBatch { entity, items } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                // A call-level error (a stale handle) is every item's error.
                let got = match h.add_routes(items) {
                    Ok(v) => v,
                    Err(e) => items.iter().map(|_| Err(e)).collect(),
                };
                assert_eq!(got.len(), items.len());
                for (g, (prefix, params)) in got.into_iter().zip(items) {
                    let want = self.model.add(*entity, *prefix, params.clone(), AddMode::Normal);
                    match (g, want) {
                        (Ok((r, gf)), Ok((id, wf))) => {
                            assert_eq!(gf, wf, "{op:?} item {prefix}");
                            if let Some(s) = self.slots.iter().find(|s| s.id == id) {
                                assert!(s.r.ptr_eq(&r), "identity kept: {op:?} item {prefix}");
                            }
                            if self.slots.len() < 64 {
                                let owner = (*entity, self.model.gen[*entity]);
                                self.slots.push(Slot { id, owner, r });
                            }
                        }
                        (g, w) => assert_eq!(fmt_err(&g), fmt_err(&w), "{op:?} item {prefix}"),
                    }
                }
            }
            Op::Insert { entity, prefix, params, mode } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let got = h.insert_route_with(prefix, params.clone(), *mode);
                let want = self.model.add(*entity, *prefix, params.clone(), *mode).map(|(_, f)| f);
                assert_eq!(got, want, "{op:?}");
            }
            Op::InsertBatch { entity, items } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let got = match h.insert_routes(items) {
                    Ok(v) => v,
                    Err(e) => items.iter().map(|_| Err(e)).collect(),
                };
                assert_eq!(got.len(), items.len());
                for (g, (prefix, params)) in got.into_iter().zip(items) {
                    let want =
                        self.model.add(*entity, *prefix, params.clone(), AddMode::Normal).map(|(_, f)| f);
                    assert_eq!(g, want, "{op:?} item {prefix}");
                }
            }
            Op::Withdraw { entity, prefix, neighbour } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let got = h.withdraw_route(prefix, *neighbour);
                let want = self.model.withdraw(*entity, *prefix, *neighbour);
                assert_eq!(got, want, "{op:?}");
            }
            Op::WithdrawBatch { entity, items } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let got = match h.withdraw_routes(items) {
                    Ok(v) => v,
                    Err(e) => items.iter().map(|_| Err(e)).collect(),
                };
                assert_eq!(got.len(), items.len());
                for (g, (prefix, neighbour)) in got.into_iter().zip(items) {
                    assert_eq!(g, self.model.withdraw(*entity, *prefix, *neighbour), "{op:?} item {prefix}");
                }
            }
            Op::Update { slot, entity, params } => {
                let (Some(i), Some(h)) = (self.slot(*slot), self.entity(*entity)) else {
                    return;
                };
                let got = h.update_route(&self.slots[i].r, params.clone());
                let want = self.model.update(*entity, self.slots[i].id, self.slots[i].owner, params.clone());
                assert_eq!(got, want, "{op:?}");
            }
            Op::Delete { slot, entity } => {
                let (Some(i), Some(h)) = (self.slot(*slot), self.entity(*entity)) else {
                    return;
                };
                let got = h.delete_route(&self.slots[i].r);
                let want = self.model.delete(*entity, self.slots[i].id, self.slots[i].owner);
                assert_eq!(got, want, "{op:?}");
            }
            Op::DeleteBatch { slots, entity } => {
                let Some(h) = self.entity(*entity) else {
                    return;
                };
                let Some(idx) = slots.iter().map(|&s| self.slot(s)).collect::<Option<Vec<usize>>>() else {
                    return;
                };
                let handles: Vec<RouteRef> = idx.iter().map(|&i| self.slots[i].r.clone()).collect();
                let got = match h.delete_routes(&handles) {
                    Ok(v) => v,
                    Err(e) => handles.iter().map(|_| Err(e)).collect(),
                };
                for (&i, g) in idx.iter().zip(got) {
                    let want = self.model.delete(*entity, self.slots[i].id, self.slots[i].owner);
                    assert_eq!(g, want, "{op:?} slot {i}");
                }
            }
            Op::CloneHandle(s) => {
                if let Some(i) = self.slot(*s) {
                    if self.slots.len() < 64 {
                        let c = Slot {
                            id: self.slots[i].id,
                            owner: self.slots[i].owner,
                            r: self.slots[i].r.clone(),
                        };
                        self.slots.push(c);
                    }
                }
            }
            Op::DropHandle(s) => {
                if let Some(i) = self.slot(*s) {
                    self.slots.swap_remove(i);
                }
            }
            Op::Get(a, v) => {
                let got = self.table().get(a, *v).map(|d| d.prefix());
                let want = self.check_qv(*v).and_then(|_| {
                    self.model.dests.get(a).filter(|d| d.has_in(*v)).map(|_| *a).ok_or(Error::NotFound)
                });
                assert_eq!(got, want, "{op:?}");
            }
            Op::MostSpecific(a, v) => {
                let got = self.table().most_specific(a, *v).map(|d| d.prefix());
                let want = self.check_qv(*v).and_then(|_| {
                    self.model
                        .covering(a, a.len())
                        .find(|(_, d)| d.has_in(*v))
                        .map(|(p, _)| *p)
                        .ok_or(Error::NotFound)
                });
                assert_eq!(got, want, "{op:?}");
                // The batched handle path agrees (with a second, shifted address in the batch).
                let mut ob = *a.bytes();
                ob[0] ^= 1;
                let other = NetAddress::new(a.family(), &ob, a.len()).unwrap_or(*a);
                let mut batch = Vec::new();
                self.table()
                    .most_specific_batch(&[*a, other], *v, |i, r| batch.push((i, r.map(|d| d.prefix()))));
                assert_eq!(batch.len(), 2);
                assert_eq!(batch[0], (0, want), "{op:?} (batch)");
                assert_eq!(
                    batch[1],
                    (1, self.table().most_specific(&other, *v).map(|d| d.prefix())),
                    "{op:?} (batch, 2nd)"
                );
            }
            Op::LessSpecific(a, v) => {
                // Start from the exact destination if it exists.
                let Ok(d) = self.table().get(a, ViewSet::ANY) else {
                    return;
                };
                let got = self.table().less_specific(&d, *v).map(|d| d.prefix());
                let want = self.check_qv(*v).and_then(|_| {
                    if a.len() == 0 {
                        return Err(Error::NotFound);
                    }
                    self.model
                        .covering(a, a.len() - 1)
                        .find(|(_, d)| d.has_in(*v))
                        .map(|(p, _)| *p)
                        .ok_or(Error::NotFound)
                });
                assert_eq!(got, want, "{op:?}");
            }
            Op::Lookup(a, v) => {
                let g = self.table().pin();
                let best = self.table().lookup_in(a, *v, &g);
                if let Some(b) = &best {
                    // The forwarding copy the fast path reads is the best route's.
                    assert_eq!(b.next_hops(), b.route().next_hops(), "{op:?}");
                }
                let got = best.map(|b| (b.prefix(), b.route().to_params()));
                let want = self
                    .model
                    .covering(a, a.family().max_len())
                    .find_map(|(p, d)| d.best(*v).map(|r| (*p, r.p.clone())));
                assert_eq!(got, want, "{op:?}");
            }
            Op::GetRoute(a, m) => {
                let got = self.table().get_route(a, m, ViewSet::ANY).map(|r| r.info().to_params());
                let want = self
                    .model
                    .dests
                    .get(a)
                    .and_then(|d| {
                        d.sorted().into_iter().find(|r| {
                            m.owner.is_none_or(|o| entity_id(r.owner) == o)
                                && m.neighbour.is_none_or(|n| r.p.neighbour == n)
                                && m.preference.is_none_or(|(p, x)| r.p.preference == p && r.p.metric == x)
                        })
                    })
                    .map(|r| r.p.clone())
                    .ok_or(Error::NotFound);
                assert_eq!(got, want, "{op:?}");
            }
        }
    }

    fn check_qv(&self, v: ViewSet) -> Result<()> {
        if v.is_empty() || SUPPORTED.is_superset(v) {
            Ok(())
        } else {
            Err(Error::NotSupported)
        }
    }

    /// Compares the whole table with the model, and every held handle with its route.
    pub fn check_all(&self) {
        // Batched lookups first: `check_table` takes a handle on every destination, which
        // promotes every lone route (`Table::dests`).
        check_batch(self.table(), &self.model);
        check_table(self.table(), &self.model, entity_id);
        for s in &self.slots {
            let (a, p, live) = &self.model.last[&s.id];
            let info = s.r.info();
            assert_eq!(s.r.prefix(), *a);
            assert_eq!(info.to_params(), *p, "handle reads the newest version");
            assert_eq!(info.state() == RouteState::Created, *live);
        }
    }
}

impl Default for Runner {
    fn default() -> Self {
        Self::new()
    }
}

/// Compares the engine's table (destinations in order, routes best-first) with a model.
pub fn check_table(t: &Table, m: &Model, id: impl Fn(usize) -> EntityId) {
    let got: Vec<(NetAddress, Vec<(EntityId, RouteParams)>)> = t
        .dests()
        .iter()
        .map(|d| (d.prefix(), d.route_infos().iter().map(|(_, i)| (i.owner(), i.to_params())).collect()))
        .collect();
    let want: Vec<(NetAddress, Vec<(EntityId, RouteParams)>)> = m
        .dests
        .iter()
        .map(|(a, d)| (*a, d.sorted().iter().map(|r| (id(r.owner), r.p.clone())).collect()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(t.len(), m.dests.len());
    assert_eq!(t.route_count(), m.dests.values().map(|d| d.routes.len()).sum::<usize>());
}

/// `Table::lookup_batch` returns, for every address and in order, what `lookup_in` does:
/// over hosts at both ends of every destination (several batches' worth, so the walks in
/// one batch take different paths), the destinations' own (shorter) prefixes, and an
/// address of the other family.
pub fn check_batch(t: &Table, m: &Model) {
    let mut addrs = Vec::new();
    for a in m.dests.keys() {
        let mut hi = *a.bytes();
        for (i, b) in hi.iter_mut().enumerate().take(a.family().max_len() as usize / 8) {
            let fixed = a.len().saturating_sub(8 * i as u8).min(8);
            *b |= 0xffu8.checked_shr(fixed as u32).unwrap_or(0);
        }
        addrs.push(NetAddress::new(a.family(), a.bytes(), a.family().max_len()).unwrap());
        addrs.push(NetAddress::new(a.family(), &hi, a.family().max_len()).unwrap());
        addrs.push(*a);
    }
    addrs.push("2001:db8::1/128".parse().unwrap());
    addrs.push("0.0.0.0/32".parse().unwrap());
    for v in [ViewId::UNICAST, ViewId::MULTICAST] {
        let g = t.pin();
        let mut seen = 0;
        t.lookup_batch(&addrs, v, &g, |i, got| {
            assert_eq!(i, seen, "results come once each, in order");
            seen += 1;
            let want = t.lookup_in(&addrs[i], v, &g);
            assert_eq!(
                got.map(|b| (b.prefix(), b.route().to_params())),
                want.map(|b| (b.prefix(), b.route().to_params())),
                "{:?} in view {v:?}",
                addrs[i]
            );
        });
        assert_eq!(seen, addrs.len());
    }
}

/// Runs a whole program: decode, apply, compare at the end.
pub fn run(data: &[u8]) {
    run_in(data, AddressFamily::Ipv4);
}

/// [`run`] on the table of family `fam`, with that family's prefixes ([`decode_in`]).
pub fn run_in(data: &[u8], fam: AddressFamily) {
    let mut r = Runner::new_in(fam);
    for op in decode_in(data, fam) {
        r.apply(&op);
    }
    r.check_all();
}
