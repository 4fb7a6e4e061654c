//! Shared setup for the platform tests.

/// A 1 MiB memory file, mapped shared into this process: (fd, mapping).
pub fn memfd() -> (i32, *mut u8) {
    // SAFETY: test-only setup of a 1 MiB shared memfd mapping.
    unsafe {
        let fd = libc::memfd_create(c"test".as_ptr(), 0);
        assert!(fd >= 0);
        assert_eq!(libc::ftruncate(fd, 1 << 20), 0);
        let p = libc::mmap(std::ptr::null_mut(), 1 << 20, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd, 0);
        assert_ne!(p, libc::MAP_FAILED);
        (fd, p as *mut u8)
    }
}
