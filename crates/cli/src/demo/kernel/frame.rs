//! A frame's bytes, checked end to end: the camera writes a header and a payload drawn from
//! the seed, with the payload's checksum; the renderer transforms the payload (a different
//! byte for every position and frame) and keeps the header; each reader undoes the transform
//! and checks the camera's checksum, the frame number and the attempt. A frame lost, torn
//! (half one frame, half another) or read before its render finished fails the check.

use super::super::rng::Rng;

/// A frame's size in bytes (the buffers are this big).
pub const FRAME_BYTES: usize = 64 * 1024;
/// The header: magic, frame, capture start (`CLOCK_MONOTONIC` ns), checksum, attempt.
const HEADER: usize = 40;
/// The payload's size.
pub const PAYLOAD_BYTES: usize = FRAME_BYTES - HEADER;
const MAGIC: u64 = u64::from_le_bytes(*b"dmabufFR");

/// FNV-1a, 64 bits.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The renderer's transform of payload byte `i` of frame `frame`; [`undo`] reverses it.
fn key(frame: u64, i: usize) -> u8 {
    (frame as u8).wrapping_mul(31) ^ (i as u8).wrapping_mul(7) ^ 0xa5
}

/// The camera's frame `frame`: header (attempt 0) and the seed's payload.
pub fn capture(seed: u64, frame: u64, captured_ns: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed ^ frame.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut bytes = vec![0u8; FRAME_BYTES];
    for chunk in bytes[HEADER..].chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        chunk.copy_from_slice(&r[..chunk.len()]);
    }
    let sum = checksum(&bytes[HEADER..]);
    for (at, v) in [
        (0, MAGIC),
        (8, frame),
        (16, captured_ns),
        (24, sum),
        (32, 0),
    ] {
        bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }
    bytes
}

/// What a stage found in a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// When the camera started capturing it (`CLOCK_MONOTONIC` ns).
    pub captured_ns: u64,
}

/// Checks `bytes` as the camera's frame `frame`: the header names it and the payload has the
/// checksum the camera wrote.
///
/// # Errors
/// What is wrong with it.
pub fn check_capture(bytes: &[u8], frame: u64) -> Result<Checked, String> {
    check(bytes, frame, None, |_, b| b)
}

/// The renderer: frame `frame`'s capture in `input` rendered into `output` as attempt
/// `attempt`.
pub fn render(input: &[u8], frame: u64, attempt: u32, output: &mut [u8]) {
    output[..HEADER].copy_from_slice(&input[..HEADER]);
    output[32..40].copy_from_slice(&u64::from(attempt).to_le_bytes());
    for (i, (o, b)) in output[HEADER..]
        .iter_mut()
        .zip(&input[HEADER..])
        .enumerate()
    {
        *o = b ^ key(frame, i);
    }
}

/// Checks `bytes` as the render of frame `frame`, attempt `attempt`: the transform undone,
/// the payload has the camera's checksum.
///
/// # Errors
/// What is wrong with it.
pub fn check_render(bytes: &[u8], frame: u64, attempt: u32) -> Result<Checked, String> {
    check(bytes, frame, Some(attempt), |i, b| b ^ key(frame, i))
}

fn check(
    bytes: &[u8],
    frame: u64,
    attempt: Option<u32>,
    undo: impl Fn(usize, u8) -> u8,
) -> Result<Checked, String> {
    if bytes.len() != FRAME_BYTES || word(bytes, 0) != MAGIC {
        return Err(format!("frame {frame}: no frame header in the buffer"));
    }
    let (named, attempt_named) = (word(bytes, 8), word(bytes, 32));
    if named != frame {
        return Err(format!("frame {frame}: the buffer holds frame {named}"));
    }
    if let Some(a) = attempt
        && attempt_named != u64::from(a)
    {
        return Err(format!(
            "frame {frame}: the buffer holds attempt {attempt_named}, not {a}"
        ));
    }
    let payload: Vec<u8> = bytes[HEADER..]
        .iter()
        .enumerate()
        .map(|(i, &b)| undo(i, b))
        .collect();
    let (want, got) = (word(bytes, 24), checksum(&payload));
    if want != got {
        return Err(format!(
            "frame {frame}: checksum {got:016x}, the camera wrote {want:016x} (torn or \
             overwritten)"
        ));
    }
    Ok(Checked {
        captured_ns: word(bytes, 16),
    })
}

#[cfg(test)]
mod tests {
    use super::{FRAME_BYTES, capture, check_capture, check_render, render};

    #[test]
    fn a_frame_survives_the_render_and_a_torn_or_stale_one_does_not() {
        let cap = capture(7, 12, 1234);
        assert_eq!(check_capture(&cap, 12).unwrap().captured_ns, 1234);
        assert!(
            check_capture(&cap, 13)
                .unwrap_err()
                .contains("holds frame 12")
        );
        let mut out = vec![0u8; FRAME_BYTES];
        render(&cap, 12, 1, &mut out);
        assert_eq!(check_render(&out, 12, 1).unwrap().captured_ns, 1234);
        assert!(check_render(&out, 12, 0).unwrap_err().contains("attempt 1"));
        // The capture itself is not a render of it.
        assert!(check_render(&cap, 12, 0).unwrap_err().contains("checksum"));
        // Torn: the second half from another frame's render.
        let mut other = vec![0u8; FRAME_BYTES];
        render(&capture(7, 14, 0), 12, 1, &mut other);
        out[FRAME_BYTES / 2..].copy_from_slice(&other[FRAME_BYTES / 2..]);
        assert!(check_render(&out, 12, 1).unwrap_err().contains("torn"));
        assert!(
            check_render(&[0; 8], 1, 0)
                .unwrap_err()
                .contains("no frame header")
        );
    }
}
