//! A minimal, deterministic POSIX ustar writer for streaming a bundle over HTTP: regular files
//! only, mode 0644, owner 0, time 0. `tar xf` unpacks it; the files are the bundle's own.

/// The 512-byte ustar header of a regular file `name` (at most 100 bytes) of `size` bytes.
pub fn header(name: &str, size: u64) -> [u8; 512] {
    let mut h = [0u8; 512];
    let put =
        |h: &mut [u8; 512], at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(&mut h, 0, &name.as_bytes()[..name.len().min(100)]);
    put(&mut h, 100, b"0000644\0");
    put(&mut h, 108, b"0000000\0");
    put(&mut h, 116, b"0000000\0");
    put(&mut h, 124, format!("{size:011o}\0").as_bytes());
    put(&mut h, 136, b"00000000000\0");
    put(&mut h, 156, b"0");
    put(&mut h, 257, b"ustar\0");
    put(&mut h, 263, b"00");
    // The checksum counts its own field as eight spaces.
    put(&mut h, 148, b"        ");
    let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
    put(&mut h, 148, format!("{sum:06o}\0 ").as_bytes());
    h
}

/// Zero bytes that pad a file of `size` bytes to a whole block.
pub fn padding(size: u64) -> usize {
    ((512 - size % 512) % 512) as usize
}

/// The end of an archive: two zero blocks.
pub const END: [u8; 1024] = [0; 1024];

#[cfg(test)]
mod tests {
    #[test]
    fn headers_checksum_and_pad() {
        let h = super::header("manifest.json", 1234);
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h;
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|b| u32::from(*b)).sum::<u32>());
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(super::padding(1234), 302);
        assert_eq!(super::padding(1024), 0);
    }
}
