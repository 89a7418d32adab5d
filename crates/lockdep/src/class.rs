//! Lock classes: the unit the validator reasons about (kernel: `struct lock_class_key`).
//!
//! Every lock instance belongs to a class, normally one `static` per kind of lock ("the
//! reservation lock of any buffer", "my driver's queue lock"). Dependencies are recorded between
//! classes, so an order inversion is found even when the two orders ran on different objects,
//! on different threads, minutes apart.
//!
//! # Rules
//! * A class is registered the first time it is used and keeps its id for the process' life.
//! * Classes made at run time ([`LockClass::leak`]) are never freed: make one per kind of lock,
//!   not per instance.

use parking_lot::RwLock;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// A class id: an index into the registry, never 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub(crate) u32);

impl ClassId {
    /// The class's name.
    pub fn name(self) -> &'static str {
        REGISTRY.read()[self.0 as usize - 1]
    }
}

/// Names of registered classes; index `id - 1`.
static REGISTRY: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

/// A lock class (kernel: `struct lock_class_key` plus its name).
///
/// ```
/// use dmabuf_lockdep::LockClass;
/// static QUEUE_LOCK: LockClass = LockClass::new("mydrv.queue_lock");
/// assert_eq!(QUEUE_LOCK.name(), "mydrv.queue_lock");
/// assert_eq!(QUEUE_LOCK.id(), QUEUE_LOCK.id());
/// ```
pub struct LockClass {
    name: &'static str,
    /// 0 until registered.
    id: AtomicU32,
}

impl LockClass {
    /// A class with a name; usable in a `static`.
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            id: AtomicU32::new(0),
        }
    }

    /// A class made at run time (e.g. one per ww_mutex class a program defines); leaked, so
    /// make one per kind of lock, not per lock.
    pub fn leak(name: impl Into<String>) -> &'static LockClass {
        let name: &'static str = Box::leak(name.into().into_boxed_str());
        Box::leak(Box::new(LockClass::new(name)))
    }

    /// The class name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The class id, registering the class on first use.
    pub fn id(&self) -> ClassId {
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return ClassId(id);
        }
        self.register()
    }

    #[cold]
    fn register(&self) -> ClassId {
        let mut reg = REGISTRY.write();
        // Another thread may have registered it while we waited for the lock.
        let id = self.id.load(Ordering::Acquire);
        if id != 0 {
            return ClassId(id);
        }
        reg.push(self.name);
        let id = u32::try_from(reg.len()).unwrap_or(u32::MAX);
        self.id.store(id, Ordering::Release);
        ClassId(id)
    }
}

impl fmt::Debug for LockClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LockClass({})", self.name)
    }
}

/// How a lock is acquired (kernel lockdep's `read` argument: 0, 1, 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A writer or mutex holder (kernel: `read == 0`).
    Exclusive,
    /// A non-recursive reader: a reader that can block behind a waiting writer, as with
    /// `std::sync::RwLock::read` (kernel: `read == 1`, e.g. `down_read`).
    Shared,
    /// A recursive reader: never blocks behind a waiting writer while readers hold the lock, as
    /// with `parking_lot::RwLock::read_recursive` (kernel: `read == 2`, e.g. `read_lock`).
    RecursiveShared,
}

impl Mode {
    /// Whether this is a read acquisition of either kind.
    pub fn is_read(self) -> bool {
        !matches!(self, Mode::Exclusive)
    }

    pub(crate) fn bits(self) -> u64 {
        match self {
            Mode::Exclusive => 1,
            Mode::Shared => 2,
            Mode::RecursiveShared => 3,
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Exclusive => "W",
            Mode::Shared => "R",
            Mode::RecursiveShared => "R(recursive)",
        })
    }
}
