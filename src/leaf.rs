//! Leaves: what the trie holds for each prefix, its lone routes or a destination object.
//!
//! # Why
//! Most prefixes of a routing table have one route and nobody holds a handle on them.
//! A [`Dest`] (three cache lines, 192 bytes) costs such a prefix more than the rest of the
//! table together. A prefix's leaf is one atomic word, the prefix's *cell* in its trie
//! node (`trie/mod.rs`, "Cells"), which says what the prefix has:
//! * **lone routes** (`group.rs`): one route as `ONE | Version::into_raw(version)`, the
//!   version and nothing else (the word owns one count on it), or several as
//!   `MANY | group`, an immutable block of version pointers, best first. A route's owner is
//!   its version's (entity id and registration number, `RouteInfo::owner` and `serial`:
//!   versions are interned per registration). Lone routes have no identity objects: they
//!   get them when somebody asks for a handle (below).
//! * **a destination** (a [`Dest`] address, untagged): the full RTMv2 object, with its
//!   snapshots, route identities and handles. The word owns the destination's link
//!   reference.
//! * **dead** ([`DEAD`]): final; the prefix is about to be taken out of the trie (anyone
//!   may help).
//!
//! Until session 24 a leaf was an object of its own (32 bytes: the prefix and the word)
//! that the node pointed to. A lookup then read the node's run, then the leaf: a dependent
//! cache miss that prefix-trie, whose values sit in its nodes, does not have (55 % of a
//! single IPv4 lookup's samples waited on it, BENCHMARKS.md, session 24). The word now
//! sits in the node itself.
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
//! * destination -> dead: the destination died (its last route deleted, `dest/mod.rs`,
//!   "Death"), by whoever unlinks it.
//!
//! The word never returns to a value it held before except through a state equal to what
//! the old word described: a lone word names a version or a group the word holds (so its
//! address cannot be reused while the word holds it), and describes the whole state of the
//! prefix (a group is immutable); a destination is freed only after its word died. So a
//! CAS that succeeds against a word read earlier installs a state computed from the
//! current one (no ABA).
//!
//! # Cells move
//! A writer that changes the node (another prefix added or removed) copies it, and first
//! *freezes* every cell, as it does the child slots: no CAS of a frozen word succeeds, so
//! the copy carries every word that landed. A [`Leaf`] is a writer's view of a prefix's
//! cell: when it reads a frozen word it finds the prefix's cell again in the copy
//! ([`Trie::cell_for_write`], which helps a copier that left the node frozen). Readers
//! ([`read`]) see through the tag: a frozen word is still the prefix's current state.
//!
//! # Reclamation
//! Replaced versions and groups are released epoch-deferred (readers pinned before the CAS
//! may still read them); the destination's link reference likewise after its word died
//! (the argument of `DestPtr`'s `Drop`: readers find destinations only through a cell).
//! The node holding a cell is freed epoch-deferred after it was replaced. So everything a
//! reader reaches from a cell it found under its pin stays allocated until it unpins.

use crate::dest::{Dest, DestPtr};
use crate::entity::Entity;
use crate::group::{borrowed, word_of, Lone, MANY, ONE};
use crate::prefix::NetAddress;
use crate::route::{RouteInfo, Version};
use crate::sync::epoch::Guard;
use crate::sync::{retire_with, Arc, Ordering, Touch};
use crate::table::TableInner;
use crate::trie::{Cell, Trie, FROZEN};

/// The dead word (the group tag without a group).
pub(crate) const DEAD: usize = MANY;

/// Ordering of every load of a word. `Acquire` pairs with the `AcqRel` CAS that stored it
/// (or the `Release` of the trie CAS that published the node holding it): the version or
/// destination built before is visible to the reader. (Mutant `leaf_relaxed_load`: loom
/// model `promote_vs_lookup`.)
#[cfg(not(rtm_mutant = "leaf_relaxed_load"))]
const LOAD: Ordering = Ordering::Acquire;
#[cfg(rtm_mutant = "leaf_relaxed_load")]
const LOAD: Ordering = Ordering::Relaxed;

/// Success ordering of every CAS of a word (see [`Leaf::cas`]). Mutant `leaf_relaxed`
/// makes it Relaxed: what the new word names (a promoted destination, a version, a group)
/// is then not published to the readers that load it (loom model `promote_vs_lookup`).
#[cfg(not(rtm_mutant = "leaf_relaxed"))]
const CAS: Ordering = Ordering::AcqRel;
#[cfg(rtm_mutant = "leaf_relaxed")]
const CAS: Ordering = Ordering::Relaxed;

/// What a word says, read under a pin.
#[derive(Clone, Copy)]
pub(crate) enum State<'g> {
    /// Lone routes: the word read (for a CAS against it) and the routes.
    Lone(usize, Lone<'g>),
    /// A destination.
    Dest(&'g Dest),
    /// Dead: unlink the prefix and retry.
    Dead,
}

/// A reader's view of cell `c`: its state, valid while `g` is pinned (a frozen word is
/// read through its tag).
#[inline(always)]
pub(crate) fn read<'g>(c: Cell<'g>, _g: &'g Guard) -> State<'g> {
    decode(c.word().load(LOAD) & !FROZEN)
}

/// [`read`], with the commonest state first: a single lone route's version as `Ok` (one
/// tag test; a lookup's result in a table of one route per prefix), else the state.
#[inline(always)]
pub(crate) fn read_one<'g>(c: Cell<'g>, _g: &'g Guard) -> Result<&'g RouteInfo, State<'g>> {
    let w = c.word().load(LOAD) & !FROZEN;
    if w & ONE != 0 {
        // SAFETY: as in `decode` (tag `ONE`: a lone word, whose version is released only
        // epoch-deferred after a CAS replaced the word).
        Ok(unsafe { Lone::decode(w) }.get(0))
    } else {
        Err(decode(w))
    }
}

#[inline(always)]
fn decode<'g>(w: usize) -> State<'g> {
    debug_assert_eq!(w & FROZEN, 0);
    if w == DEAD {
        State::Dead
    } else if w & (ONE | MANY) != 0 {
        // SAFETY: a lone word's version or group is released only epoch-deferred after a
        // CAS replaced the word, so it outlives the caller's pin (module docs,
        // "Reclamation").
        State::Lone(w, unsafe { Lone::decode(w) })
    } else {
        // SAFETY: an untagged word other than DEAD is the address of a destination the
        // word holds the link reference of, released epoch-deferred after the word died;
        // its provenance was exposed by `Dest::create`.
        let d = unsafe { &*core::ptr::with_exposed_provenance::<Dest>(w) };
        d.touch();
        State::Dest(d)
    }
}

/// The word of a new leaf for `dest`, taking over the reference `dest` holds (the link).
/// Unpublished: release it with [`free_word`] if the insertion fails.
pub(crate) fn dest_word(dest: DestPtr) -> usize {
    dest.into_link().expose_provenance()
}

/// Releases what the word `w` holds, now: a word never published, or one of a trie nobody
/// can reach any more (a table's drop).
///
/// # Safety
/// The word is ours and released once.
pub(crate) unsafe fn free_word(w: usize) {
    let w = w & !FROZEN;
    if w == DEAD {
    } else if w & (ONE | MANY) != 0 {
        // SAFETY: the word's version or group, released once (the caller's contract).
        unsafe { Lone::free_word(w) };
    } else {
        // SAFETY: the word's link reference, released once.
        drop(unsafe { DestPtr::from_link(core::ptr::with_exposed_provenance::<Dest>(w)) });
    }
}

/// Releases the link reference a destination's death took out of its word
/// ([`Leaf::kill_dest`]) after the grace period: readers that found the destination
/// through the word hold uncounted pointers (see `DestPtr`'s `Drop`).
pub(crate) fn retire_link(link: DestPtr, g: &Guard) {
    // SAFETY: the word is dead, so no new reader finds the destination through it; readers
    // pinned before are waited for.
    unsafe { retire_with(g, move || drop(link)) };
}

/// Whether a lone route (its version `info`) is `owner`'s.
#[inline(always)]
pub(crate) fn owned_by(info: &RouteInfo, owner: &Entity) -> bool {
    info.serial == owner.serial && info.owner == owner.id
}

/// A writer's view of a prefix's leaf: the prefix, and its cell, found again when a node
/// copy froze it (module docs, "Cells move"). Not `Sync`: one thread's view.
#[derive(Clone)]
pub(crate) struct Leaf<'g> {
    cell: core::cell::Cell<Cell<'g>>,
    trie: &'g Trie,
    pub(crate) prefix: NetAddress,
}

impl<'g> Leaf<'g> {
    /// The leaf of `prefix`, whose cell in `trie` is `cell`.
    #[inline(always)]
    pub(crate) fn new(trie: &'g Trie, cell: Cell<'g>, prefix: NetAddress) -> Self {
        Self { cell: core::cell::Cell::new(cell), trie, prefix }
    }

    /// The leaf of `prefix` in `trie` if it is stored (for a writer).
    pub(crate) fn get(trie: &'g Trie, prefix: &NetAddress, g: &'g Guard) -> Option<Self> {
        trie.cell_for_write(prefix, g).map(|c| Self::new(trie, c, *prefix))
    }

    /// [`get`](Self::get), with the destination's two lines prefetched if the prefix has
    /// a destination. A single-route add with a handle walks first and interns its version
    /// after (`update.rs`, `add_route_with`), so the destination's misses overlap the
    /// interning. (Lone routes gain nothing from it: their versions are shared, so mostly
    /// cached, and the walk's own misses cannot overlap the interner's locked
    /// instructions, which wait for the loads before them; measured, BENCHMARKS.md
    /// session 28.)
    pub(crate) fn get_prefetched(trie: &'g Trie, prefix: &NetAddress, g: &'g Guard) -> Option<Self> {
        let leaf = Self::get(trie, prefix, g)?;
        if let State::Dest(d) = leaf.state(g) {
            d.prefetch_for_write();
        }
        Some(leaf)
    }

    /// The cell as last found.
    #[inline(always)]
    pub(crate) fn cell(&self) -> Cell<'g> {
        self.cell.get()
    }

    /// The leaf's state for a writer. A frozen word sends it to the prefix's cell in the
    /// node's copy first; a prefix no longer stored reads as dead (it died, and whoever
    /// took it out had unlinked it).
    pub(crate) fn state(&self, _g: &'g Guard) -> State<'g> {
        loop {
            let w = self.cell.get().word().load(LOAD);
            if w & FROZEN == 0 {
                return decode(w);
            }
            match self.trie.cell_for_write(&self.prefix, _g) {
                Some(c) => self.cell.set(c),
                None => return State::Dead,
            }
        }
    }

    /// CAS of the word from `old` to `new`. `AcqRel` ([`CAS`]): Release publishes what
    /// `new` points to (a version or a destination built before) to readers' `LOAD`;
    /// Acquire orders the later release of what `old` held after the CAS that read it.
    /// Failure: Relaxed (the caller reloads with [`state`](Self::state), which also finds
    /// a frozen cell's successor: a frozen word never equals an unfrozen `old`).
    fn cas(&self, old: usize, new: usize) -> bool {
        debug_assert_eq!(old & FROZEN, 0);
        self.cell.get().word().compare_exchange(old, new, CAS, Ordering::Relaxed).is_ok()
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

    /// The destination `dest` (this leaf's) died: the word dies with it. Returns the link
    /// reference the word held if this call killed it: the caller takes the prefix out of
    /// the trie and releases the link with [`retire_link`]. Follows a moved cell.
    #[must_use = "the link reference is released after the grace period (`retire_link`)"]
    pub(crate) fn kill_dest(&self, dest: &Dest, g: &'g Guard) -> Option<DestPtr> {
        let w = core::ptr::from_ref(dest).addr();
        loop {
            if self.cas(w, DEAD) {
                // SAFETY: the word held the link reference, which our CAS took out of it.
                return Some(unsafe { DestPtr::from_link(dest) });
            }
            match self.state(g) {
                State::Dest(d) if core::ptr::eq(d, dest) => continue,
                _ => return None,
            }
        }
    }

    /// The destination of this leaf, promoting lone routes first (module docs). `None` if
    /// the leaf is dead. A lone route whose owner is no longer registered (under the
    /// registration number its version keeps) is withdrawn instead of promoted
    /// (deregistration is withdrawing it: this helps).
    pub(crate) fn promote(&self, t: &TableInner, g: &'g Guard) -> Option<&'g Dest> {
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
                self.cell.get().word().store(dest.as_ptr().addr(), Ordering::Release);
                true
            };
            #[cfg(not(rtm_mutant = "promote_store"))]
            let won = self.cas(w, dest.as_ptr().addr());
            if won {
                // The destination's snapshot holds its own counts on the versions now.
                Lone::retire(w, g);
                let d = dest.into_link();
                // SAFETY: the link reference is held by the word until the word dies, and
                // released epoch-deferred after that, so beyond our pin.
                return Some(unsafe { &*d });
            }
            // The routes changed meanwhile: the private destination was never visible.
            crate::update::discard(dest, g);
            crate::sync::spin_hint();
        }
    }
}

/// The destination in cell `c`, if it holds one (a reader's view, as [`read`]).
#[inline]
pub(crate) fn dest_in<'g>(c: Cell<'g>, g: &'g Guard) -> Option<&'g Dest> {
    match read(c, g) {
        State::Dest(d) => Some(d),
        _ => None,
    }
}

/// The destination in a cell that holds one (tests: not a lone route).
#[cfg(test)]
pub(crate) fn dest_of<'g>(c: Cell<'g>, g: &'g Guard) -> &'g Dest {
    dest_in(c, g).expect("not a destination's cell")
}
