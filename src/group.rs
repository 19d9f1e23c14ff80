//! Lone routes: the routes of a prefix that has no destination object (`leaf.rs`), one
//! version each, best first. One route is the version itself in the leaf's word; several
//! are a [`Group`], an immutable arena block of version pointers that a leaf's word
//! points to.
//!
//! # Order and owners
//! Lone routes have **one route per owner** (registration) at most: a write that would
//! give an owner a second route on the prefix (another neighbour, or `AddMode::New`)
//! promotes the leaf to a destination object instead, whose routes have creation
//! sequences (RTMv2 matches "the oldest" of an owner's routes, and breaks selection ties
//! by creation). A BGP speaker's peers have one route per prefix each, so a prefix with
//! routes from several peers stays lone. A group is sorted by the selection order of
//! `route::selection_order` without its creation tie-break (preference, metric, owner
//! entity id, neighbour, then the registration number, which tells apart a deregistered
//! owner's last routes from those of a new registration of the same id): with one route
//! per owner, the order is total, and a promotion that adds the routes in group order
//! keeps it, whatever creation sequences it gives them.

//! # Ownership
//! A group owns one count on each of its versions, taken when it is built (on versions
//! the builder holds or reads under its pin through the word it replaces, which holds its
//! own counts until after the grace period), and released with the block epoch-deferred
//! after a CAS replaced the word ([`Lone::retire`]), or at once if the group was never
//! published.

use crate::entity::Entity;
use crate::route::{NextHop, RouteInfo, Version};
use crate::sync::epoch::Guard;
use crate::sync::{node_alloc, node_dealloc, retire_with, TrackedCell};
use crate::view::{ViewId, ViewSet};
use core::alloc::Layout;
use core::cmp::Ordering as CmpOrdering;
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

/// Tag of a lone route's word (versions are at least 8-aligned: they hold words).
pub(crate) const ONE: usize = 1;
/// Tag of a group's word (groups are 8-aligned arena blocks).
pub(crate) const MANY: usize = 2;
/// Both tag bits.
const TAGS: usize = ONE | MANY;

/// Several lone routes: a header and `len` version pointers (`Version::into_raw`), best first.
#[repr(C)]
pub(crate) struct Group {
    alive: TrackedCell<()>,
    len: usize,
    // followed by `len` words
}

/// The lone routes a leaf's word names, read under a pin: one version, or a group.
#[derive(Clone, Copy)]
pub(crate) enum Lone<'g> {
    One(&'g RouteInfo),
    Many(&'g Group),
}

/// A version's identity among a prefix's routes: registration number, owner, neighbour.
type Id = (u32, crate::entity::EntityId, Option<NextHop>);

fn id(v: &RouteInfo) -> Id {
    (v.serial, v.owner, v.neighbour)
}

/// The group order (module docs).
pub(crate) fn order(a: &RouteInfo, b: &RouteInfo) -> CmpOrdering {
    (a.preference, a.metric, a.owner, a.neighbour, a.serial).cmp(&(
        b.preference,
        b.metric,
        b.owner,
        b.neighbour,
        b.serial,
    ))
}

/// A non-owning [`Version`] for the version at `p`, never dropped.
///
/// Rebuilt from the address with the block's provenance, which `Version::into_raw`
/// exposed: callers hold versions as `&RouteInfo`, whose tag permits reads of the contents
/// only, and a `Version` made from it would one day free the block through that tag
/// (miri, tree borrows).
///
/// # Safety
/// `p` is a version's contents (a `Version` given up by `into_raw`, or the contents of one
/// a word or group holds) and a count on it is held while the result is used.
pub(crate) unsafe fn borrowed(p: *const RouteInfo) -> ManuallyDrop<Version> {
    // SAFETY: forwarded from the caller; `ManuallyDrop` keeps the count untouched.
    ManuallyDrop::new(unsafe { Version::from_raw(p) })
}

/// A new count on the version `v` (alive: the caller reads it under a count it knows of),
/// as a raw pointer.
fn counted(v: &RouteInfo) -> usize {
    // SAFETY: `v` is a version some word or group counts (the caller's contract), so the
    // borrowed `Version` is valid while we clone it.
    let a = unsafe { borrowed(v) };
    Version::into_raw(Version::clone(&a)).addr()
}

impl Group {
    fn layout(len: usize) -> (Layout, usize) {
        let (l, off) = Layout::new::<Group>()
            .extend(Layout::array::<usize>(len).expect("a group fits in memory"))
            .expect("a group fits in memory");
        (l.pad_to_align(), off)
    }

    /// The version pointers.
    fn words(&self) -> &[usize] {
        let (_, off) = Self::layout(self.len);
        // The words lie past the header a `&Group` covers: rebuilt from the block's address
        // with the provenance `new` exposed.
        let at = core::ptr::with_exposed_provenance::<usize>(core::ptr::from_ref(self).addr() + off);
        // SAFETY: `new` wrote `len` words at `off` in this block, immutable until `free`.
        unsafe { core::slice::from_raw_parts(at, self.len) }
    }

    /// Bytes of the group's block (for memory figures).
    pub(crate) fn bytes(&self) -> usize {
        Self::layout(self.len).0.size()
    }

    /// A new group of the versions `vs` (sorted by [`order`], at least two), taking a count
    /// on each (see the module docs for why they are alive).
    fn new(vs: &[&RouteInfo]) -> NonNull<Group> {
        debug_assert!(vs.len() > 1 && vs.windows(2).all(|w| order(w[0], w[1]) == CmpOrdering::Less));
        let (layout, off) = Self::layout(vs.len());
        let Some(p) = NonNull::new(node_alloc(layout).cast::<Group>()) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: a fresh block of `layout`: the header, then `vs.len()` words at `off`.
        unsafe {
            p.as_ptr().write(Group { alive: TrackedCell::new(()), len: vs.len() });
            let words = p.as_ptr().cast::<u8>().add(off).cast::<usize>();
            for (i, v) in vs.iter().enumerate() {
                words.add(i).write(counted(v));
            }
        }
        let _ = p.as_ptr().expose_provenance();
        p
    }

    /// Releases the counts and frees the block.
    ///
    /// # Safety
    /// `p` came from [`new`](Self::new), is freed once, and nobody reads it any more.
    unsafe fn free(p: *mut Group) {
        // SAFETY: the caller's contract.
        let g = unsafe { &mut *p };
        for &w in g.words() {
            // SAFETY: each word is a count the group took in `new`, released once here.
            drop(unsafe { Version::from_raw(core::ptr::with_exposed_provenance::<RouteInfo>(w)) });
        }
        g.alive.retire();
        let (layout, _) = Self::layout(g.len);
        // SAFETY: the block `new` allocated with this layout.
        unsafe { node_dealloc(p.cast(), layout) };
    }
}

impl<'g> Lone<'g> {
    /// Decodes a lone word (tag [`ONE`] or a non-null [`MANY`]).
    ///
    /// # Safety
    /// `w` is a lone word read from a leaf under a pin that lasts `'g`: what it names is
    /// released only epoch-deferred after a CAS replaced it.
    #[inline(always)]
    pub(crate) unsafe fn decode(w: usize) -> Self {
        if w & ONE != 0 {
            // SAFETY: the caller's contract (a version the word counts).
            let v = unsafe { &*core::ptr::with_exposed_provenance::<RouteInfo>(w & !TAGS) };
            v.touch();
            Lone::One(v)
        } else {
            // SAFETY: the caller's contract (a group the word owns).
            let g = unsafe { &*core::ptr::with_exposed_provenance::<Group>(w & !TAGS) };
            g.alive.touch();
            Lone::Many(g)
        }
    }

    /// Prefetches what a lookup reads next: one route's version (its first line holds
    /// what a lookup reads, `RouteInfo`'s layout), or a group's block. Versions are
    /// shared, but a table whose routes carry their own attributes has about one per
    /// route, far more than the caches hold.
    #[inline(always)]
    pub(crate) fn prefetch(&self) {
        match self {
            Lone::One(v) => crate::sync::prefetch(core::ptr::from_ref(*v)),
            Lone::Many(g) => crate::sync::prefetch(core::ptr::from_ref(*g)),
        }
    }

    /// The number of routes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Lone::One(_) => 1,
            Lone::Many(g) => g.len,
        }
    }

    /// Route `i` (best first).
    #[inline(always)]
    pub(crate) fn get(&self, i: usize) -> &'g RouteInfo {
        match *self {
            Lone::One(v) => v,
            Lone::Many(g) => {
                // SAFETY: the group counts each of its versions while it is alive, and it is
                // alive while the pin of `'g` lasts (`decode`'s contract).
                let v = unsafe { &*core::ptr::with_exposed_provenance::<RouteInfo>(g.words()[i]) };
                v.touch();
                v
            }
        }
    }

    /// The routes, best first.
    pub(crate) fn iter(self) -> impl Iterator<Item = &'g RouteInfo> {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// The best route of view `v`.
    #[inline(always)]
    pub(crate) fn best(self, v: ViewId) -> Option<&'g RouteInfo> {
        match self {
            // The common case (one route per prefix) without the iterator's index loop.
            Lone::One(r) => r.views.contains(v).then_some(r),
            Lone::Many(_) => self.iter().find(|r| r.views.contains(v)),
        }
    }

    /// Whether some route belongs to one of `views` (any route for `ViewSet::ANY`).
    pub(crate) fn has_route_in(self, views: ViewSet) -> bool {
        views.is_empty() || self.iter().any(|r| r.views.intersects(views))
    }

    /// Bytes of the group (0 for one route: the word holds it).
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Lone::One(_) => 0,
            Lone::Many(g) => g.bytes(),
        }
    }

    /// The index of `owner`'s route with neighbour `n` (`None`: any of `owner`'s routes),
    /// or `Err(())` if several match (never: one route per owner, module docs).
    pub(crate) fn find(self, owner: &Entity, n: Option<&Option<NextHop>>) -> Result<Option<usize>, ()> {
        let mut found = None;
        for (i, r) in self.iter().enumerate() {
            if r.serial == owner.serial && r.owner == owner.id && n.is_none_or(|n| r.neighbour == *n) {
                if found.is_some() {
                    return Err(());
                }
                found = Some(i);
            }
        }
        Ok(found)
    }

    /// Releases what the word `w` (this set's) holds, after the grace period: the caller's
    /// CAS replaced it.
    pub(crate) fn retire(w: usize, g: &Guard) {
        let a = w;
        // SAFETY: the caller's CAS took `w` out of its leaf, so what it holds is ours to
        // release; readers pinned before are waited for.
        unsafe { retire_with(g, move || Lone::free_word(a)) };
    }

    /// Releases what the lone word `w` holds, now.
    ///
    /// # Safety
    /// The word is ours (never published, or unreachable) and released once.
    pub(crate) unsafe fn free_word(w: usize) {
        if w & ONE != 0 {
            // SAFETY: the word's count, released once.
            drop(unsafe { Version::from_raw(core::ptr::with_exposed_provenance::<RouteInfo>(w & !TAGS)) });
        } else {
            // SAFETY: the word's group, freed once.
            unsafe { Group::free(core::ptr::with_exposed_provenance_mut::<Group>(w & !TAGS)) };
        }
    }
}

/// A lone word for the versions `vs` (sorted, at least one): the version itself (a count
/// taken) or a new group. Unpublished: free it with [`Lone::free_word`] if the CAS fails.
pub(crate) fn word_of(vs: &[&RouteInfo]) -> usize {
    match vs {
        [v] => counted(v) | ONE,
        _ => Group::new(vs).as_ptr().expose_provenance() | MANY,
    }
}

/// The routes of `set` with route `i` replaced by `new` (`Some(i)`) or `new` added, sorted.
pub(crate) fn with<'a>(set: Lone<'a>, i: Option<usize>, new: &'a RouteInfo) -> Vec<&'a RouteInfo> {
    let mut vs: Vec<&RouteInfo> =
        set.iter().enumerate().filter(|&(k, _)| Some(k) != i).map(|(_, v)| v).collect();
    let at = vs.partition_point(|v| order(v, new) == CmpOrdering::Less);
    vs.insert(at, new);
    vs
}

/// The routes of `set` without route `i`.
pub(crate) fn without(set: Lone<'_>, i: usize) -> Vec<&RouteInfo> {
    set.iter().enumerate().filter(|&(k, _)| k != i).map(|(_, v)| v).collect()
}

/// `RTM_ROUTE_CHANGE_BEST` for a change of lone routes from `old` to `new` where the route
/// `me` (its identity before, `me_old`, and after, `me_new`) changed, in the views it
/// belonged to before or after: some view's best route changed, or `me` is or was best
/// (as `update::best_changed`).
pub(crate) fn best_changed(
    old: Lone<'_>,
    new: &[&RouteInfo],
    me_old: Option<&RouteInfo>,
    me_new: Option<&RouteInfo>,
) -> bool {
    let views =
        me_old.map_or(ViewSet::from_bits(0), |m| m.views) | me_new.map_or(ViewSet::from_bits(0), |m| m.views);
    let (mo, mn) = (me_old.map(id), me_new.map(id));
    views.iter().any(|v| {
        let o = old.iter().find(|r| r.views.contains(v)).map(id);
        let n = new.iter().find(|r| r.views.contains(v)).map(|r| id(r));
        o != n || (o.is_some() && o == mo) || (n.is_some() && n == mn)
    })
}
