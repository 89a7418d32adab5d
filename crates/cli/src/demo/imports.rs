//! The imports the pipeline's devices make of its buffers: dynamic ones that hear
//! `move_notify` and map again, and static ones mapped for the attachment's whole life.

use super::DemoError;
use dmabuf::buf::{Attachment, Device, Direction, DmaBuf, Dynamic, Importer, Locked, Mapping};
use dmabuf::resv::ResvGuard;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A dynamic importer: marks its mapping stale on `move_notify`.
#[derive(Debug, Default)]
struct Client {
    stale: AtomicBool,
    notified: Arc<AtomicU64>,
}

impl Importer for Client {
    fn move_notify(&self, _locked: &Locked<'_>) {
        self.stale.store(true, Ordering::SeqCst);
        self.notified.fetch_add(1, Ordering::Relaxed);
    }
}

/// A device's dynamic import of a camera buffer and its current mapping.
pub struct DynImport {
    att: Attachment<Dynamic>,
    client: Arc<Client>,
    mapping: Option<Arc<Mapping>>,
}

impl DynImport {
    /// Attaches `device` to `buf` dynamically; its moves count in `notified`.
    pub fn new(
        buf: &DmaBuf,
        device: &Device,
        notified: &Arc<AtomicU64>,
    ) -> Result<Self, DemoError> {
        let client = Arc::new(Client {
            stale: AtomicBool::new(false),
            notified: notified.clone(),
        });
        Ok(DynImport {
            att: buf.dynamic_attach(device, client.clone())?,
            client,
            mapping: None,
        })
    }

    /// The mapping to use now, remade if the buffer moved (with its lock held).
    pub fn mapping(&mut self, guard: &ResvGuard<'_>) -> Result<Arc<Mapping>, DemoError> {
        if let Some(m) = &self.mapping
            && !self.client.stale.load(Ordering::SeqCst)
        {
            return Ok(m.clone());
        }
        self.unmap(guard);
        let m = Arc::new(self.att.map(guard, Direction::Bidirectional)?);
        // Mapping for the pool's own device may have restored the buffer, notifying us too:
        // this mapping is already the new placement's.
        self.client.stale.store(false, Ordering::SeqCst);
        self.mapping = Some(m.clone());
        Ok(m)
    }

    /// Unmaps (with the buffer's lock) and detaches, once every job is done.
    pub fn teardown(mut self) {
        let buf = self.att.buf().clone();
        let guard = buf.resv().lock_single();
        self.unmap(&guard);
        drop(guard);
        self.att.detach();
    }

    /// Gives the mapping back (jobs drop theirs before signalling, and a move waits for them).
    fn unmap(&mut self, guard: &ResvGuard<'_>) {
        if let Some(old) = self.mapping.take()
            && let Ok(m) = Arc::try_unwrap(old)
        {
            let _ = m.unmap(guard);
        }
    }
}

/// A static import of a render target, mapped for the attachment's whole life (seed 000's
/// fix: no map or unmap near a signalling path).
pub struct StaticImport {
    att: Attachment,
    mapping: Option<Arc<Mapping>>,
}

impl StaticImport {
    /// Attaches `device` to `buf` and maps it (taking the buffer's lock).
    pub fn new(buf: &DmaBuf, device: &Device) -> Result<Self, DemoError> {
        let att = buf.attach(device)?;
        let guard = buf.resv().lock_single();
        let mapping = Arc::new(att.map(&guard, Direction::Bidirectional)?);
        drop(guard);
        Ok(StaticImport {
            att,
            mapping: Some(mapping),
        })
    }

    /// The mapping, for a job.
    pub fn mapping(&self) -> Arc<Mapping> {
        self.mapping.clone().expect("mapped until teardown")
    }

    /// Unmaps (with the buffer's lock) and detaches, once every job is done.
    pub fn teardown(mut self) {
        if let Some(m) = self.mapping.take().and_then(|m| Arc::try_unwrap(m).ok()) {
            let buf = self.att.buf().clone();
            let guard = buf.resv().lock_single();
            let _ = m.unmap(&guard);
        }
        self.att.detach();
    }
}
