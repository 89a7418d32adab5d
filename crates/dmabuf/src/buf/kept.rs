//! What an attachment keeps of the tables it handed out (kernel: nothing; a driver that
//! forgets to unmap leaks its `sg_table`): enough to unmap each one at detach, in a slot its
//! [`Mapping`](super::Mapping) knows.
//!
//! A mapping holds its table itself; the attachment keeps a copy of the table's direction and
//! segments (inline for one or two, the common case) so that detach can unmap what is still
//! mapped. An unmap frees its slot in O(1), whatever the number of mappings, and the next map
//! reuses it. The first slot lives inside the attachment, so an attachment mapped once at a
//! time allocates nothing here.

use super::{Device, Direction, Segment, SgTable};

/// The slots of one attachment's tables.
#[derive(Default)]
pub(super) struct Tables {
    /// Slot 0.
    first: Option<Kept>,
    /// Slots 1 and up: slot `i + 1` is `rest[i]`.
    rest: Vec<Slot>,
    /// The first free entry of `rest`, whose `Slot::Free` names the next.
    free: Option<usize>,
}

/// An entry of [`Tables::rest`].
enum Slot {
    Kept(Kept),
    /// Free; the next free entry.
    Free(Option<usize>),
}

/// What is kept of one table: enough to unmap it at detach.
pub(super) struct Kept {
    direction: Direction,
    /// The table's device when it is not the attachment's (an exporter may map for another).
    device: Option<Device>,
    segments: Segments,
}

/// A copy of a table's segments, inline for one or two (no allocation).
enum Segments {
    /// The first `len` of `at`.
    Inline {
        len: usize,
        at: [Segment; 2],
    },
    Heap(Box<[Segment]>),
}

impl Kept {
    /// What to keep of `table`, mapped for `attached`.
    pub(super) fn of(table: &SgTable, attached: &Device) -> Self {
        let segs = table.segments();
        let segments = if segs.len() <= 2 {
            let mut at = [Segment { addr: 0, len: 0 }; 2];
            at[..segs.len()].copy_from_slice(segs);
            Segments::Inline {
                len: segs.len(),
                at,
            }
        } else {
            Segments::Heap(segs.into())
        };
        Kept {
            direction: table.direction(),
            device: (!table.device().same(attached)).then(|| table.device().clone()),
            segments,
        }
    }

    /// The table again, to unmap, for `attached`.
    pub(super) fn into_table(self, attached: &Device) -> SgTable {
        let segments = match self.segments {
            Segments::Inline { len, at } => at[..len].to_vec(),
            Segments::Heap(segs) => segs.into_vec(),
        };
        let device = self.device.unwrap_or_else(|| attached.clone());
        SgTable::new(device, self.direction, segments)
    }
}

impl Tables {
    /// Keeps `kept`; returns its slot.
    pub(super) fn insert(&mut self, kept: Kept) -> usize {
        if self.first.is_none() {
            self.first = Some(kept);
            return 0;
        }
        if let Some(i) = self.free
            && let Some(slot) = self.rest.get_mut(i)
            && let Slot::Free(next) = *slot
        {
            *slot = Slot::Kept(kept);
            self.free = next;
            return i + 1;
        }
        debug_assert!(self.free.is_none(), "the free list names a slot in use");
        self.free = None;
        self.rest.push(Slot::Kept(kept));
        self.rest.len()
    }

    /// Forgets what `slot` keeps; `false` if it kept nothing.
    pub(super) fn remove(&mut self, slot: usize) -> bool {
        let Some(i) = slot.checked_sub(1) else {
            return self.first.take().is_some();
        };
        match self.rest.get_mut(i) {
            Some(entry @ Slot::Kept(_)) => {
                *entry = Slot::Free(self.free);
                self.free = Some(i);
                true
            }
            _ => false,
        }
    }

    /// Whether no slot keeps anything.
    pub(super) fn is_empty(&self) -> bool {
        self.first.is_none() && self.rest.iter().all(|s| matches!(s, Slot::Free(_)))
    }

    /// Everything kept.
    pub(super) fn into_kept(self) -> impl Iterator<Item = Kept> {
        self.first
            .into_iter()
            .chain(self.rest.into_iter().filter_map(|s| match s {
                Slot::Kept(k) => Some(k),
                Slot::Free(_) => None,
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::DeviceCaps;

    fn kept(dev: &Device, addr: u64, n: usize) -> Kept {
        let segments = (0..n as u64)
            .map(|i| Segment {
                addr: addr + i * 4096,
                len: 4096,
            })
            .collect();
        Kept::of(
            &SgTable::new(dev.clone(), Direction::ToDevice, segments),
            dev,
        )
    }

    fn addrs(t: Tables, dev: &Device) -> Vec<u64> {
        let mut v: Vec<u64> = t
            .into_kept()
            .map(|k| k.into_table(dev).segments()[0].addr)
            .collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn freed_slots_are_reused_and_only_kept_ones_come_back() {
        let dev = Device::new("d", DeviceCaps::NONE);
        let mut t = Tables::default();
        assert!(t.is_empty());
        let slots: Vec<usize> = (0..5).map(|i| t.insert(kept(&dev, i << 20, 1))).collect();
        assert_eq!(slots, [0, 1, 2, 3, 4]);
        assert!(t.remove(3) && t.remove(0) && t.remove(1));
        assert!(!t.remove(3), "already forgotten");
        assert!(!t.remove(99), "never handed out");
        // Slot 0 first, then the freed ones, newest freed first, then new ones.
        assert_eq!(t.insert(kept(&dev, 10 << 20, 1)), 0);
        assert_eq!(t.insert(kept(&dev, 11 << 20, 1)), 1);
        assert_eq!(t.insert(kept(&dev, 12 << 20, 1)), 3);
        assert_eq!(t.insert(kept(&dev, 13 << 20, 1)), 5);
        assert!(!t.is_empty());
        assert_eq!(
            addrs(t, &dev),
            [2 << 20, 4 << 20, 10 << 20, 11 << 20, 12 << 20, 13 << 20]
        );
    }

    #[test]
    fn a_table_comes_back_whole_with_its_device() {
        let dev = Device::new("attached", DeviceCaps::NONE);
        let other = Device::new("other", DeviceCaps::NONE);
        for n in [0, 1, 2, 3, 9] {
            let segments: Vec<Segment> = (0..n)
                .map(|i| Segment {
                    addr: 0x1000 * (i + 1),
                    len: 0x1000,
                })
                .collect();
            for owner in [&dev, &other] {
                let table = SgTable::new(owner.clone(), Direction::FromDevice, segments.clone());
                let back = Kept::of(&table, &dev).into_table(&dev);
                assert_eq!(back.segments(), &segments[..]);
                assert_eq!(back.direction(), Direction::FromDevice);
                assert!(back.device().same(owner));
            }
        }
    }
}
