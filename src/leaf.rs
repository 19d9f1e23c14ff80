//! Leaves: what the trie links for each prefix, its lone routes or a destination object.
//!
//! # Why
//! Most prefixes of a routing table have one route and nobody holds a handle on them.
//! A [`Dest`] (two cache lines, 128 bytes) costs such a prefix more than the rest of the
//! table together. A leaf is 32 bytes: the prefix, and one atomic word that says what the
//! prefix has:
//! * **lone routes** (`group.rs`): one route as `ONE | Version::into_raw(version)`, the
//!   version and nothing else (the leaf owns one count on it), or several as
//!   `MANY | group`, an immutable block of version pointers, best first. A route's owner is
//!   its version's (entity id and registration number, `RouteInfo::owner` and `serial`:
//!   versions are interned per registration). Lone routes have no identity objects: they
//!   get them when somebody asks for a handle (below).
//! * **a destination** (a [`Dest`] address, untagged): the full RTMv2 object, with its
//!   snapshots, route identities and handles. The leaf owns the destination's link
//!   reference (what the trie owned before leaves).
//! * **dead** (`DEAD`): final; the leaf is about to be unlinked (anyone may help).
//!
//! # Transitions
//! Every change is one compare-and-swap of the word:
//! * lone routes -> lone routes: an owner announces, re-announces or withdraws a route
//!   (a new version or group; the last withdrawal leaves the word dead);
//! * lone routes -> destination: *promotion*, when somebody asks for a handle or a write
//!   needs creation sequences (`group.rs`). The promoter builds the destination privately
//!   from the versions it read (the best route becomes the destination's own route, the
//!   others route blocks) and installs it with the CAS; a failed CAS (the routes changed
//!   meanwhile) discards the private destination and retries;
//! * destination -> dead: the destination died (its last route deleted, `dest.rs`,
//!   "Death"), by whoever unlinks it.
//!
//! The word never returns to a value it held before except through a state equal to what
//! the old word described: a lone word names a version or a group the word holds (so its
//! address cannot be reused while the word holds it), and describes the whole state of the
//! prefix (a group is immutable); a destination is freed only after its leaf died. So a
//! CAS that succeeds against a word read earlier installs a state computed from the
//! current one (no ABA).
//!
//! # Reclamation
//! Replaced versions and groups are released epoch-deferred (readers pinned before the CAS
//! may still read them); the destination's link reference likewise after its leaf died (the argument
//! of `DestPtr`'s `Drop`: readers find destinations only through a leaf); and an unlinked
//! leaf is freed epoch-deferred after the trie removal. So everything a reader reaches from
//! a leaf it found under its pin stays allocated until it unpins.

use crate::dest::{Dest, DestPtr};
use crate::entity::Entity;
use crate::group::{borrowed, word_of, Lone, MANY, ONE};
use crate::prefix::NetAddress;
use crate::route::{RouteInfo, Version};
use crate::sync::epoch::Guard;
use crate::sync::{arena_drop, arena_new, retire_with, Arc, AtomicUsize, Ordering, Touch, TrackedCell};
use crate::table::TableInner;
use core::ptr::NonNull;

/// The dead word (the group tag without a group).
const DEAD: usize = MANY;

/// Ordering of every load of a leaf's word. `Acquire` pairs with the `AcqRel` CAS that
/// stored it (or the `Release` of the trie CAS that published a new leaf): the version or
/// destination built before is visible to the reader. (Mutant `leaf_relaxed_load`: loom
/// model `promote_vs_lookup`.)
#[cfg(not(rtm_mutant = "leaf_relaxed_load"))]
const LOAD: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "leaf_relaxed_load")]
const LOAD: Ordering = Ordering::Relaxed;

/// Success ordering of every CAS of a leaf's word (see [`Leaf::cas`]). Mutant
/// `leaf_relaxed` makes it Relaxed: what the new word names (a promoted destination, a
/// version, a group) is then not published to the readers that load it (loom model
/// `promote_vs_lookup`).
#[cfg(not(rtm_mutant = "leaf_relaxed"))]
const CAS: Ordering = Ordering::AcqRel;
#[cfg(rtm_mutant = "leaf_relaxed")]
const CAS: Ordering = Ordering::Relaxed;

/// A prefix's leaf: see the module docs. 32 bytes (asserted below).
#[repr(C)]
pub(crate) struct Leaf {
    alive: TrackedCell<()>,
    pub(crate) prefix: NetAddress,
    word: AtomicUsize,
}

#[cfg(not(loom))]
const _: () = assert!(core::mem::size_of::<Leaf>() == 32);

/// What a leaf's word says, read under a pin.
#[derive(Clone, Copy)]
pub(crate) enum State<'g> {
    /// Lone routes: the word read (for a CAS against it) and the routes.
    Lone(usize, Lone<'g>),
    /// A destination.
    Dest(&'g Dest),
    /// Dead: unlink the leaf and retry.
    Dead,
}

impl crate::trie::Prefixed for Leaf {
    #[inline(always)]
    fn prefix(&self) -> &NetAddress {
        &self.prefix
    }
}

impl Touch for Leaf {
    #[inline(always)]
    fn touch(&self) {
        self.alive.touch();
    }
}

impl Drop for Leaf {
    fn drop(&mut self) {
        self.alive.retire();
        crate::sync::LIVE_LEAVES.add(-1);
    }
}

impl Leaf {
    /// Bytes of one leaf (its arena block).
    pub(crate) const BYTES: usize = core::mem::size_of::<Leaf>();

    /// Byte offset of the word (the line a lookup reads; see `Trie::lookup_batch`).
    pub(crate) const HOT: usize = core::mem::offset_of!(Leaf, word);

    fn alloc(prefix: NetAddress, word: usize) -> NonNull<Leaf> {
        crate::sync::LIVE_LEAVES.add(1);
        let p = arena_new(Leaf { alive: TrackedCell::new(()), prefix, word: AtomicUsize::new(word) });
        // For `free`: the trie stores the address as an integer.
        let _ = p.as_ptr().expose_provenance();
        p
    }

    /// A new unlinked leaf with one lone route, version `info` (the leaf takes a count of
    /// its own).
    pub(crate) fn one(prefix: NetAddress, info: &RouteInfo) -> NonNull<Leaf> {
        Self::alloc(prefix, word_of(&[info]))
    }

    /// A new unlinked leaf for `dest`, taking over the reference `dest` holds (the link).
    pub(crate) fn of_dest(dest: DestPtr) -> NonNull<Leaf> {
        let prefix = dest.prefix;
        Self::alloc(prefix, dest.into_link().expose_provenance())
    }

    /// The leaf's state, valid while `g` is pinned.
    #[inline(always)]
    pub(crate) fn state<'g>(&self, _g: &'g Guard) -> State<'g> {
        self.touch();
        Self::decode(self.word.load(LOAD))
    }

    #[inline(always)]
    fn decode<'g>(w: usize) -> State<'g> {
        if w == DEAD {
            State::Dead
        } else if w & (ONE | MANY) != 0 {
            // SAFETY: a lone word's version or group is released only epoch-deferred after a
            // CAS replaced the word, so it outlives the caller's pin (module docs,
            // "Reclamation").
            State::Lone(w, unsafe { Lone::decode(w) })
        } else {
            // SAFETY: an untagged word other than DEAD is the address of a destination the
            // leaf holds the link reference of, released epoch-deferred after the leaf died;
            // its provenance was exposed by `Dest::create`.
            let d = unsafe { &*core::ptr::with_exposed_provenance::<Dest>(w) };
            d.touch();
            State::Dest(d)
        }
    }

    /// The destination of a leaf that has one (tests: the leaf must not be a lone route).
    #[cfg(test)]
    pub(crate) fn dest<'g>(&self, g: &'g Guard) -> &'g Dest {
        match self.state(g) {
            State::Dest(d) => d,
            _ => panic!("not a destination's leaf"),
        }
    }

    /// Whether a lone route (its version `info`) is `owner`'s.
    #[inline(always)]
    pub(crate) fn owned_by(info: &RouteInfo, owner: &Entity) -> bool {
        info.serial == owner.serial && info.owner == owner.id
    }

    /// CAS of the word from `old` to `new`. `AcqRel` ([`CAS`]): Release publishes what
    /// `new` points to (a version or a destination built before) to readers' `LOAD`;
    /// Acquire orders the later release of what `old` held after the CAS that read it.
    /// Failure: Relaxed (the caller reloads with `LOAD`).
    fn cas(&self, old: usize, new: usize) -> bool {
        self.touch();
        self.word.compare_exchange(old, new, CAS, Ordering::Relaxed).is_ok()
    }

    /// Replaces the lone word `old` (read from this leaf) by the lone routes `vs` (sorted;
    /// none: dead). `false` if the word changed meanwhile (reload and retry). On success
    /// what `old` held is released after the grace period; a leaf made dead must be
    /// unlinked by the caller ([`TableInner::unlink_leaf`]), who counts the route out.
    pub(crate) fn swap_lone(&self, old: usize, vs: &[&RouteInfo], g: &Guard) -> bool {
        let new = if vs.is_empty() { DEAD } else { word_of(vs) };
        if self.cas(old, new) {
            Lone::retire(old, g);
            return true;
        }
        if new != DEAD {
            // SAFETY: built above and never published.
            unsafe { Lone::free_word(new) };
        }
        false
    }

    /// The destination `dest` (this leaf's) died: the leaf dies with it. Returns the link
    /// reference the word held if this call killed the leaf: the caller unlinks the leaf
    /// and releases both with [`retire`](Self::retire) (readers that found the destination
    /// through this leaf hold uncounted pointers, see `DestPtr`'s `Drop`).
    #[must_use = "the link reference is released after the grace period (`Leaf::retire`)"]
    pub(crate) fn kill_dest(&self, dest: &Dest) -> Option<DestPtr> {
        // SAFETY: the word held the link reference, which our CAS took out of it.
        self.cas(core::ptr::from_ref(dest).addr(), DEAD).then(|| unsafe { DestPtr::from_link(dest) })
    }

    /// The destination of this leaf, promoting lone routes first (module docs). `None` if
    /// the leaf is dead. A lone route whose owner is no longer registered (under the
    /// registration number its version keeps) is withdrawn instead of promoted
    /// (deregistration is withdrawing it: this helps).
    pub(crate) fn promote<'g>(&self, t: &TableInner, g: &'g Guard) -> Option<&'g Dest> {
        loop {
            let (w, set) = match self.state(g) {
                State::Dest(d) => return Some(d),
                State::Dead => return None,
                State::Lone(w, set) => (w, set),
            };
            let owner = |v: &RouteInfo| {
                t.entities.get(&v.owner).filter(|e| e.serial == v.serial && e.is_registered())
            };
            let owners: Vec<Option<Arc<Entity>>> = set.iter().map(owner).collect();
            if let Some(i) = owners.iter().position(Option::is_none) {
                let rest = crate::group::without(set, i);
                if self.swap_lone(w, &rest, g) {
                    t.route_count.add(-1);
                    if rest.is_empty() {
                        t.unlink_leaf(self, g);
                    }
                }
                continue;
            }
            // SAFETY: the word `w` holds a count on each version until after our pin (what
            // it holds is released epoch-deferred once replaced); the copies are used only
            // below.
            let infos: Vec<_> = set.iter().map(|v| unsafe { borrowed(v) }).collect();
            let routes: Vec<(Arc<Entity>, &Version)> =
                owners.into_iter().flatten().zip(infos.iter().map(|a| &**a)).collect();
            let dest = Dest::create_with(self.prefix, &routes, g);
            // Mutant `promote_store` installs the destination with a plain store: an update
            // of the lone route between our load and the store is lost (loom model
            // `promote_vs_update`).
            #[cfg(rtm_mutant = "promote_store")]
            let won = {
                self.word.store(dest.as_ptr().addr(), Ordering::Release);
                true
            };
            #[cfg(not(rtm_mutant = "promote_store"))]
            let won = self.cas(w, dest.as_ptr().addr());
            if won {
                // The destination's snapshot holds its own counts on the versions now.
                Lone::retire(w, g);
                let d = dest.into_link();
                // SAFETY: the link reference is held by the word until the leaf dies, and
                // released epoch-deferred after that, so beyond our pin.
                return Some(unsafe { &*d });
            }
            // The routes changed meanwhile: the private destination was never visible.
            crate::update::discard(dest, g);
            crate::sync::spin_hint();
        }
    }

    /// Frees a leaf that no thread can reach any more: unlinked after the grace period of
    /// its removal, or never linked. Releases what its word still holds.
    ///
    /// # Safety
    /// `p` came from [`one`](Self::one) or [`of_dest`](Self::of_dest), is freed once, and no
    /// thread reads it any more.
    pub(crate) unsafe fn free(p: *const Leaf) {
        let p = core::ptr::with_exposed_provenance_mut::<Leaf>(p.addr());
        // SAFETY: the caller's contract: the leaf is ours alone.
        let w = unsafe { (*p).word.load(Ordering::Relaxed) };
        if w == DEAD {
        } else if w & (ONE | MANY) != 0 {
            // SAFETY: the word's version or group, released once (the leaf goes with it).
            unsafe { Lone::free_word(w) };
        } else {
            // SAFETY: the word's link reference, released once.
            drop(unsafe { DestPtr::from_link(core::ptr::with_exposed_provenance::<Dest>(w)) });
        }
        // SAFETY: from `arena_new` in `alloc` (the caller's contract), freed once.
        unsafe { arena_drop(p) };
    }

    /// Frees an unlinked leaf, and releases the link reference its death took out of its
    /// word (`kill_dest`, if the caller has it), after the grace period of the removal:
    /// one deferred function for both.
    ///
    /// # Safety
    /// The caller's trie removal unlinked `p` (so it owns it), or `p` is null (only the link
    /// goes: the leaf was unlinked by another thread).
    pub(crate) unsafe fn retire(p: *const Leaf, link: Option<DestPtr>, g: &Guard) {
        let a = p.addr();
        // SAFETY: unlinked (the caller's contract), so no new reader finds the leaf, and its
        // dead word no longer names the destination; readers pinned before are waited for.
        // The word is dead (only dead leaves are unlinked): nothing else to release.
        unsafe {
            retire_with(g, move || {
                drop(link);
                if a != 0 {
                    Leaf::free(a as *const Leaf);
                }
            })
        };
    }
}
