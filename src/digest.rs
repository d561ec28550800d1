//! SHA-256 of a stream, read in fixed-size pieces so that memory use does not depend on its
//! size, and hex for digests.

use std::io::{ErrorKind, Read};
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

/// Bytes read at a time.
const PIECE: usize = 1 << 20;

/// SHA-256 of everything `reader` yields. Stops with `Interrupted` as soon as `cancel` is set
/// (the request that asked for it went away, or the server is stopping).
pub fn sha256(mut reader: impl Read, cancel: &AtomicBool) -> std::io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; PIECE];
    loop {
        if cancel.load(Ordering::Relaxed) {
            return Err(std::io::Error::new(ErrorKind::Interrupted, "cancelled"));
        }
        match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buffer[..n]),
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(hasher.finalize().into())
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)] as char);
        out.push(DIGITS[usize::from(byte & 0xf)] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_values_across_piece_boundaries() {
        let never = AtomicBool::new(false);
        let empty = sha256(&b""[..], &never).unwrap();
        assert_eq!(
            hex(&empty),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // Two and a half pieces of one byte value, checked against the one-shot hash.
        let data = vec![7u8; PIECE * 5 / 2];
        let streamed = sha256(&data[..], &never).unwrap();
        let whole: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!(streamed, whole);
    }

    #[test]
    fn a_cancelled_hash_stops() {
        let cancel = AtomicBool::new(true);
        let error = sha256(&b"abc"[..], &cancel).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Interrupted);
    }
}
