//! Port of igt-gpu-tools' `tests/syncobj_basic.c` (creating, destroying and passing sync
//! objects) to the in-process model.
//!
//! Mapping: a syncobj handle is a [`Syncobj`]; `DRM_SYNCOBJ_CREATE_SIGNALED` is
//! [`Syncobj::new_signaled`]; exporting a syncobj as an opaque fd and importing it back as a
//! handle is cloning the [`Syncobj`] (another handle to the same object); destroying a handle
//! is dropping it; `syncobj_wait_err()` is a [`Wait`] over point 0.
//!
//! Not ported: `bad-destroy`, `bad-create-flags`, `bad-handle-to-fd`, `bad-fd-to-handle`,
//! `bad-flags-handle-to-fd`, `bad-flags-fd-to-handle`, `bad-pad-handle-to-fd`,
//! `bad-pad-fd-to-handle`, `illegal-fd-to-handle`, `bad-destroy-pad`: they test the ioctls'
//! handles, fds, flags and padding fields, which belong to the kernel layer (`dmabuf-linux`);
//! in the model a [`Syncobj`] is always a valid object and creation has no flags to get
//! wrong.

use dmabuf::syncobj::{Point, Syncobj, Wait};
use std::time::Duration;

// ports igt syncobj_basic: create-signaled
#[test]
fn create_signaled() {
    let s = Syncobj::new_signaled();
    let wait = Wait::new([(&s, Point::BINARY)]);
    assert_eq!(wait.all(Some(Duration::ZERO)), Ok(()));
    assert!(s.fence().expect("a stub fence").is_signaled());
}

// ports igt syncobj_basic: test-valid-cycle
#[test]
fn test_valid_cycle() {
    // Export and import give a second handle to the same object, not a deduplicated one.
    let first = Syncobj::new();
    let second = first.clone();
    assert!(first.ptr_eq(&second));
    // Destroying one handle leaves the object to the other.
    drop(first);
    second.signal();
    assert_eq!(
        Wait::new([(&second, Point::BINARY)]).all(Some(Duration::ZERO)),
        Ok(())
    );
}
