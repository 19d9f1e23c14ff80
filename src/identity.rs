//! Route identities, and [`RoutePtr`], the counted pointer that names one.
//!
//! # Two kinds of identity
//! A route's identity (what a [`RouteRef`](crate::RouteRef) pins and a snapshot entry
//! names) is one of:
//! * the destination's **own route**: the route the destination was created with. Its
//!   [`Identity`] (owner and tombstone) lives in the destination's header line, in bytes
//!   that were padding, and it has no count of its own: a reference to it *is* a reference
//!   to the destination. Most destinations of a routing table only ever have that one
//!   route, so most routes cost no allocation and no cache line of their own (a full
//!   table's routes took a 48-byte block each, 38 bytes per route of the whole RIB).
//! * a **route block** ([`Route`], a 48-byte [`Counted`] arena block) for every later
//!   route of a destination: its identity, a counted pointer to its destination, and its
//!   creation sequence.
//!
//! # The pointer
//! A [`RoutePtr`] is one word and owns one reference: a block's address (a
//! `Counted::into_raw`), or a destination's address with bit 0 ([`OWN`]) set (a
//! `DestPtr::into_raw`, one count on the destination). Both are at least 8-aligned, so the
//! bit is free, and the tag is set with `map_addr`, which keeps the pointer's provenance.
//! Two pointers name the same route exactly when their words are equal: a destination has
//! one own route, a block is one route. Cloning one increments the block's count or the
//! destination's, with the same orderings as `Counted`/`DestPtr` (whose code it calls), and
//! dropping one releases it the same way.
//!
//! # What the merged count means
//! The own route's owner and tombstone are dropped with its destination, not when its
//! last handle goes: they share the destination's lifetime, which every handle on the route
//! extended anyway (a route block holds a count on its destination). A destination whose
//! own route was deleted keeps that route's tombstone (one shared version) until it dies,
//! and a later route of the same owner there is a block: the own route is never reused (a
//! stale handle to it must keep reading "deleted", so the identity cannot be handed out
//! again). A deregistered entity stays allocated while a destination it created lives (its
//! version interner is emptied at deregistration, so that is the entity record alone).
//!
//! # Creation sequence
//! The last tie-break of route selection (`route::selection_order`) orders the routes of a
//! destination by creation. The own route's is 0; a block's is the generation of the
//! snapshot that first holds it (the transition that adds it), so it is unique on the
//! destination (every installed snapshot has a higher generation than the one it
//! replaced, and a transition adds at most one route) and above every route added before.
//! No counter on the destination: that is what made room for the own route's identity.

use crate::dest::{Dest, DestPtr};
use crate::entity::Entity;
use crate::route::{RouteInfo, Version};
use crate::sync::epoch::Guard;
use crate::sync::{Arc, Counted, MaxSlot};
use core::ptr::NonNull;

/// What every route identity holds besides its place: the owner and the tombstone.
/// 24 bytes (asserted with the destination's layout).
pub(crate) struct Identity {
    pub(crate) owner: Arc<Entity>,
    /// The tombstone: empty until a delete attempt; then the route's last contents, keyed
    /// by the generation of the snapshot that removed it (see `route/mod.rs`, "Deletion").
    gone: MaxSlot<RouteInfo>,
}

impl Identity {
    pub(crate) fn new(owner: Arc<Entity>) -> Self {
        crate::sync::LIVE_ROUTES.add(1);
        Self { owner, gone: MaxSlot::empty() }
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        crate::sync::LIVE_ROUTES.add(-1);
    }
}

/// A route block: a destination's route other than its own (see the module docs).
pub(crate) struct Route {
    id: Identity,
    /// Its destination (a counted reference: a route handle keeps the destination
    /// readable).
    dest: DestPtr,
    /// Creation order on its destination (module docs, "Creation sequence").
    seq: u64,
}

/// Tag bit of a [`RoutePtr`] naming its destination's own route.
const OWN: usize = 1;

/// A counted pointer to a route identity: see the module docs.
pub(crate) struct RoutePtr(NonNull<u8>);

// SAFETY: it is a `Counted<Route>` or a `DestPtr` (both `Send` and `Sync`: shared immutable
// values and atomic counts) in one word; `&RoutePtr` only gives shared references.
unsafe impl Send for RoutePtr {}
// SAFETY: as above.
unsafe impl Sync for RoutePtr {}

/// What a [`RoutePtr`] points to.
enum Kind<'a> {
    Own(&'a Dest),
    Block(&'a Counted<Route>),
}

impl RoutePtr {
    /// The own route of the destination `dest` holds a reference to (taken over).
    pub(crate) fn own(dest: DestPtr) -> Self {
        Self(dest.into_raw().cast::<u8>().map_addr(|a| a | OWN))
    }

    /// A new route block on `dest` (a reference the block keeps).
    pub(crate) fn block(dest: DestPtr, owner: Arc<Entity>, seq: u64) -> Self {
        Self(Counted::into_raw(Counted::new(Route { id: Identity::new(owner), dest, seq })))
    }

    #[inline(always)]
    fn is_own(&self) -> bool {
        self.0.addr().get() & OWN != 0
    }

    /// The destination's address, for the own route.
    #[inline(always)]
    fn own_dest(&self) -> NonNull<Dest> {
        let p = self.0.as_ptr().map_addr(|a| a & !OWN).cast::<Dest>();
        // SAFETY: a tagged word is a destination's address (non-null) with bit 0 set.
        unsafe { NonNull::new_unchecked(p) }
    }

    #[inline(always)]
    fn kind(&self) -> Kind<'_> {
        if self.is_own() {
            // SAFETY: a tagged word is a `DestPtr::into_raw` (`own`) whose reference this
            // pointer holds while borrowed.
            Kind::Own(unsafe { DestPtr::borrow_raw(self.own_dest()) })
        } else {
            // SAFETY: an untagged word is a `Counted::into_raw` (`block`) whose reference
            // this pointer holds while borrowed.
            Kind::Block(unsafe { Counted::borrow_raw(&self.0) })
        }
    }

    /// The route's destination.
    #[inline]
    pub(crate) fn dest(&self) -> &Dest {
        match self.kind() {
            Kind::Own(d) => d,
            Kind::Block(b) => &b.dest,
        }
    }

    /// A new reference to the route's destination.
    pub(crate) fn dest_ptr(&self) -> DestPtr {
        match self.kind() {
            Kind::Own(d) => d.counted_clone(),
            Kind::Block(b) => b.dest.clone(),
        }
    }

    #[inline]
    fn identity(&self) -> &Identity {
        match self.kind() {
            Kind::Own(d) => &d.own,
            Kind::Block(b) => &b.id,
        }
    }

    /// The owning registration.
    #[inline]
    pub(crate) fn owner(&self) -> &Arc<Entity> {
        &self.identity().owner
    }

    /// Creation order on the destination (module docs, "Creation sequence").
    #[inline]
    pub(crate) fn seq(&self) -> u64 {
        match self.kind() {
            Kind::Own(_) => 0,
            Kind::Block(b) => b.seq,
        }
    }

    /// Records `info` as this route's last contents, removed by the snapshot of generation
    /// `gen`, unless the tombstone already holds contents at least as new. Call before the
    /// CAS that removes the route.
    pub(crate) fn bury(&self, gen: u64, info: &Version, g: &Guard) {
        self.identity().gone.raise(gen, info.counted(), g);
    }

    /// The tombstone (empty until a delete attempt).
    pub(crate) fn tombstone<'g>(&self, g: &'g Guard) -> Option<&'g RouteInfo> {
        self.identity().gone.load(g)
    }

    /// The references on the route's count: a block's own, or its destination's for the
    /// own route (tests only: racy by nature).
    #[cfg(test)]
    pub(crate) fn count(&self) -> usize {
        match self.kind() {
            Kind::Own(d) => d.ref_count(),
            Kind::Block(b) => Counted::count(b),
        }
    }

    /// Whether `a` and `b` name the same route.
    #[inline(always)]
    pub(crate) fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.0 == b.0
    }

    /// The identity's first line (the block, or the destination's header line): for
    /// prefetching, and as the route's identity in comparisons.
    #[inline(always)]
    pub(crate) fn addr(&self) -> *const u8 {
        if self.is_own() {
            self.own_dest().as_ptr().cast_const().cast()
        } else {
            self.0.as_ptr().cast_const()
        }
    }
}

impl Clone for RoutePtr {
    #[inline]
    fn clone(&self) -> Self {
        // The orderings are those of the two counted pointers (Relaxed increments of a
        // reference made from a held one).
        match self.kind() {
            Kind::Own(d) => Self::own(d.counted_clone()),
            Kind::Block(b) => Self(Counted::into_raw(b.clone())),
        }
    }
}

impl Drop for RoutePtr {
    fn drop(&mut self) {
        // Release decrements, and the last holder's Acquire load before the drop: the
        // protocol of the pointer the reference came from (`DestPtr`, `Counted`).
        if self.is_own() {
            // SAFETY: the tagged word came from `DestPtr::into_raw` (`own`); this pointer's
            // reference is taken back once, here.
            drop(unsafe { DestPtr::from_raw(self.own_dest()) });
        } else {
            // SAFETY: the untagged word came from `Counted::into_raw` (`block`); taken back
            // once, here.
            drop(unsafe { Counted::<Route>::from_raw(self.0) });
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::entity::EntityId;

    /// Own routes and blocks: identity by word, the destination and owner of each kind,
    /// the creation sequences, and the counts a clone and a drop move (the own route's on
    /// the destination, a block's on itself).
    #[test]
    fn both_kinds_count_and_compare() {
        let owner = Arc::new(Entity::new(EntityId::new(1, 1)));
        let d = Dest::create("10.0.0.0/8".parse().unwrap(), owner.clone());
        let own = RoutePtr::own(d.clone());
        assert_eq!(d.ref_count(), 2);
        let own2 = own.clone();
        assert_eq!(d.ref_count(), 3, "a reference to the own route counts on the destination");
        assert!(RoutePtr::ptr_eq(&own, &own2));
        assert!(core::ptr::eq(own.dest(), &*d));
        assert!(Arc::ptr_eq(own.owner(), &owner));
        assert_eq!(own.seq(), 0);
        assert_eq!(own.addr(), d.as_ptr().cast());

        let other = Arc::new(Entity::new(EntityId::new(2, 1)));
        let b = RoutePtr::block(d.clone(), other.clone(), 7);
        assert_eq!(d.ref_count(), 4, "a block holds one reference to its destination");
        let b2 = b.clone();
        assert_eq!(d.ref_count(), 4, "a reference to a block counts on the block");
        assert!(RoutePtr::ptr_eq(&b, &b2) && !RoutePtr::ptr_eq(&b, &own));
        assert!(core::ptr::eq(b.dest(), &*d));
        assert!(Arc::ptr_eq(b.owner(), &other));
        assert_eq!(b.seq(), 7);
        assert_ne!(b.addr(), own.addr());
        let dp = own.dest_ptr();
        assert_eq!(d.ref_count(), 5);
        drop((dp, b, own2));
        assert_eq!(d.ref_count(), 3, "a block's handle released only its own count");
        drop(b2);
        assert_eq!(d.ref_count(), 2, "the block's last reference released its destination");
        drop(own);
        assert_eq!(d.ref_count(), 1);
        assert_eq!(Arc::strong_count(&other), 1, "the block's owner went with it");
        assert_eq!(Arc::strong_count(&owner), 2, "the own route's owner stays with the destination");
        drop(d);
        assert_eq!(Arc::strong_count(&owner), 1);
    }
}
