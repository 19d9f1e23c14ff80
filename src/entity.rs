//! Entities: the routing protocols (clients) registered with a table.
//!
//! An entity is registered per (instance, address family) under an [`EntityId`] =
//! (protocol id, instance id); a second registration of the same id in the same table is
//! [`Error::AlreadyExists`]. The [`EntityRef`] returned is
//! the registration handle: it adds, updates and deletes the entity's routes.
//!
//! # Deregistration
//! [`EntityRef::deregister`] clears the `registered` flag, then withdraws every route the
//! entity owns (a table scan), then removes it from the registry. Every later call through
//! any clone of the handle is [`Error::InvalidHandle`]. An `add_route` racing the
//! deregistration is either refused or its route is withdrawn: the adder publishes its
//! route, issues a SeqCst fence and re-reads the flag (withdrawing its own route if the
//! flag was cleared), while deregistration clears the flag, issues a SeqCst fence and then
//! scans — so at least one of the two sees the other (the store-buffering pattern).
//! Route handles of a deregistered entity stay readable (state `Deleted`).

use crate::error::{Error, Result};
use crate::prefix::AddressFamily;
use crate::route::{RouteInfo, RouteParams, Version};
use crate::sync::{Arc, AtomicBool, Interner, Ordering};
use crate::table::TableInner;
use core::fmt;

/// An entity id: `RTM_ENTITY_ID` = (protocol id, instance id). Ordered by protocol, then
/// instance (this order breaks route-selection ties).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId {
    /// The protocol (RIP, OSPF, BGP, static, ...).
    pub protocol: u32,
    /// The instance of the protocol.
    pub instance: u32,
}

impl EntityId {
    /// An entity id.
    pub const fn new(protocol: u32, instance: u32) -> Self {
        Self { protocol, instance }
    }

    /// The combined 64-bit `EntityId` (protocol id in the low 32 bits, as on little-endian
    /// Windows).
    pub const fn to_u64(self) -> u64 {
        (self.instance as u64) << 32 | self.protocol as u64
    }
}

/// What [`EntityRef::info`] returns (`RTM_ENTITY_INFO`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EntityInfo {
    /// The RTM instance id.
    pub instance_id: u16,
    /// The address family of the registration.
    pub family: AddressFamily,
    /// The entity's id.
    pub id: EntityId,
}

/// The shared entity record.
pub(crate) struct Entity {
    pub(crate) id: EntityId,
    /// This registration's number in the process: a route-list entry carries it
    /// (`dest::Entry::owner`) so that a writer finds its own routes on a destination
    /// without loading every route object. Unique until 2^32 registrations wrap it, so a
    /// match is confirmed on the route's identity (`RoutePtr::owner`).
    pub(crate) serial: u32,
    pub(crate) registered: AtomicBool,
    /// The entity's distinct route versions, shared between its routes.
    infos: Interner<RouteInfo>,
}

impl Entity {
    pub(crate) fn new(id: EntityId) -> Self {
        Self {
            id,
            serial: crate::sync::next_serial(),
            registered: AtomicBool::new(true),
            infos: Interner::new(),
        }
    }

    /// Whether entry `e` is one of this entity's routes: the entry's owner tag,
    /// then (only on a tag match) the route's identity.
    #[inline]
    pub(crate) fn owns(&self, e: &crate::dest::Entry) -> bool {
        e.owner == self.serial && core::ptr::eq(Arc::as_ptr(e.route.owner()), self)
    }

    /// A route version of this entity with `params`: shared with its other routes that
    /// have the same (see `sync/interner.rs`).
    pub(crate) fn version(&self, params: &RouteParams) -> Version {
        // Lone routes keep versions as addresses in a leaf's word or a group and rebuild
        // them from those (`Version::into_raw` exposes the block's provenance).
        Version::from_counted(self.infos.intern(RouteInfo::from_params(params, self.id, self.serial)))
    }

    /// Whether the entity is still registered. SeqCst: part of the store-buffering pattern
    /// with `deregister` described in the module docs (pairs with its SeqCst store).
    pub(crate) fn is_registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }
}

/// A reference-counted handle to a registered entity: its registration handle (`Clone` =
/// RtmReferenceHandles, `Drop` = RtmReleaseEntities). After [`deregister`](Self::deregister)
/// every call through it returns [`Error::InvalidHandle`].
#[derive(Clone)]
#[must_use = "dropping an EntityRef releases the handle (it does not deregister)"]
pub struct EntityRef {
    pub(crate) entity: Arc<Entity>,
    pub(crate) table: Arc<TableInner>,
}

impl EntityRef {
    /// The entity's id (readable even after deregistration).
    pub fn id(&self) -> EntityId {
        self.entity.id
    }

    /// Whether the entity is still registered.
    pub fn is_registered(&self) -> bool {
        self.entity.is_registered()
    }

    /// The entity's registration info.
    ///
    /// # Errors
    /// [`Error::InvalidHandle`] after deregistration.
    pub fn info(&self) -> Result<EntityInfo> {
        self.check()?;
        Ok(EntityInfo { instance_id: self.table.instance_id, family: self.table.family, id: self.entity.id })
    }

    /// The table this entity is registered with.
    pub fn table(&self) -> crate::table::Table {
        crate::table::Table { inner: self.table.clone() }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if self.entity.is_registered() {
            Ok(())
        } else {
            Err(Error::InvalidHandle)
        }
    }

    /// Deregisters the entity: withdraws every route it owns and invalidates this handle
    /// and all its clones (see the module docs).
    ///
    /// # Errors
    /// [`Error::InvalidHandle`] if it was already deregistered.
    pub fn deregister(&self) -> Result<()> {
        // SeqCst swap: exactly one caller deregisters; pairs with the SeqCst re-check in
        // `add_route` (module docs).
        if !self.entity.registered.swap(false, Ordering::SeqCst) {
            return Err(Error::InvalidHandle);
        }
        crate::sync::fence(Ordering::SeqCst);
        self.table.withdraw_all(&self.entity);
        // Destinations this entity created keep its record (their own routes' owner) until
        // they die; its versions need not stay with it. (An add racing the deregistration
        // may intern one more, freed with the record.)
        self.entity.infos.clear();
        self.table.entities.remove_if(&self.entity.id, |e| Arc::ptr_eq(e, &self.entity));
        Ok(())
    }

    /// Whether two handles name the same registration.
    pub fn ptr_eq(&self, other: &EntityRef) -> bool {
        Arc::ptr_eq(&self.entity, &other.entity)
    }
}

impl fmt::Debug for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EntityRef")
            .field("id", &self.entity.id)
            .field("family", &self.table.family)
            .field("registered", &self.is_registered())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::sync::Arc;
    use crate::{AddressFamily, EntityId, RouteParams, Rtm};

    /// A destination an entity created keeps the entity's record after deregistration
    /// (its own route's owner) while another entity's route keeps the destination, but
    /// not the entity's versions: the interner is emptied.
    #[test]
    fn deregistration_empties_the_versions() {
        let rtm = Rtm::new();
        let a = rtm.register(AddressFamily::Ipv4, EntityId::new(1, 1)).unwrap();
        let b = rtm.register(AddressFamily::Ipv4, EntityId::new(2, 1)).unwrap();
        let p = "10.0.0.0/8".parse().unwrap();
        drop(a.add_route(&p, RouteParams::new(5, 1)).unwrap());
        drop(b.add_route(&p, RouteParams::new(6, 1)).unwrap());
        assert_eq!(a.entity.infos.len(), 1);
        a.deregister().unwrap();
        crate::drain_deferred_garbage();
        assert_eq!(a.entity.infos.len(), 0);
        assert_eq!(rtm.table(AddressFamily::Ipv4).route_count(), 1);
        assert_eq!(Arc::strong_count(&a.entity), 2, "the handle and the destination it created");
    }
}
