//! What Linux 6.18 counts of a socket buffer for one datagram, or one piece
//! of an AF_UNIX stream: its sk_buff's truesize, which SIOCOUTQ,
//! /proc/net/udp's queues and the SO_SNDBUF and SO_RCVBUF limits see. The head is allocated rounded up (a power of two,
//! whole pages beyond 8 KiB; UDP's small heads come from a 576-byte slab)
//! with the shared info after it, plus the sk_buff itself; a large datagram
//! has the rest of its bytes in page fragments.

const PAGE: usize = 4096;
const SHARED_INFO: usize = 320;
const SK_BUFF: usize = 256;
/// The most a head holds without fragments (SKB_MAX_ALLOC).
const MAX_ALLOC: usize = 4 * PAGE - SHARED_INFO;
/// The small-head slab (SKB_SMALL_HEAD_CACHE_SIZE), which GFP_KERNEL_ACCOUNT
/// allocations (AF_UNIX's) do not use.
const SMALL_HEAD: usize = 576;

/// The most an AF_UNIX stream sk_buff's head holds (SKB_MAX_HEAD(0)): a
/// page with the shared info.
const STREAM_HEAD: usize = PAGE - SHARED_INFO;
/// The fragments an AF_UNIX stream sk_buff may have (UNIX_SKB_FRAGS_SZ).
const STREAM_FRAGS: usize = 32768;

/// A head of `n` bytes and the sk_buff.
fn head(n: usize, small: bool) -> usize {
    let obj = n.next_multiple_of(64) + SHARED_INFO;
    let size = if small && obj <= SMALL_HEAD { SMALL_HEAD } else { obj.next_power_of_two() };
    size + SK_BUFF
}

/// An AF_UNIX datagram or packet of `len` bytes (unix_dgram_sendmsg): past
/// SKB_MAX_ALLOC, up to 17 pages of it go in fragments.
pub fn unix_datagram(len: usize) -> usize {
    const MAX_FRAGS: usize = 17;
    let frags = if len > MAX_ALLOC { (len - MAX_ALLOC).min(MAX_FRAGS * PAGE).next_multiple_of(PAGE) } else { 0 };
    head(len - frags, false) + frags
}

/// The most bytes one AF_UNIX stream sk_buff carries for a writer whose
/// send buffer is `sndbuf` (unix_stream_sendmsg: half of it less 64, to
/// keep two in flight, within a page's head and 32 KiB of fragments).
pub fn unix_stream_piece(sndbuf: usize) -> usize {
    (sndbuf / 2).saturating_sub(64).clamp(1, STREAM_HEAD + STREAM_FRAGS)
}

/// An AF_UNIX stream sk_buff of `len` bytes: what passes a page's head goes
/// in whole pages of fragments, and then all of it if that fits them.
pub fn unix_stream(len: usize) -> usize {
    let frags = len.saturating_sub(STREAM_HEAD).next_multiple_of(PAGE).min(len);
    head(len - frags, false) + frags.next_multiple_of(PAGE)
}

/// A UDP datagram of `len` bytes on loopback (__ip_append_data,
/// __ip6_append_data): one head with the headers and room for the link
/// layer's, unless that passes SKB_MAX_ALLOC; then the payload goes in page
/// fragments, which count as many bytes.
pub fn udp_datagram(len: usize, v6: bool) -> usize {
    // UDP and IP headers, the link layer's 16 bytes and alignment slack
    // (IPv4), or room for a fragment header (IPv6).
    let extra = if v6 { 8 + 40 + 16 + 8 } else { 8 + 20 + 16 + 15 };
    if len + extra < MAX_ALLOC { head(len + extra, true) } else { head(extra, true) + len }
}

#[cfg(test)]
mod tests {
    /// What Linux 6.18's SIOCOUTQ (AF_UNIX) and /proc/net/udp's rx_queue
    /// showed after one datagram of each size, or AF_UNIX stream writes
    /// of each size (filling the send buffer, cut in pieces of the size
    /// the send buffer allows).
    #[test]
    fn truesizes() {
        for (len, size) in [(0, 768), (192, 768), (200, 1280), (1000, 2304), (2000, 4352), (4000, 8448), (16064, 16640), (16100, 20736), (32768, 37120), (65536, 69888), (100000, 102656), (212960, 332032)] {
            assert_eq!(super::unix_datagram(len), size, "unix {len}");
        }
        for (len, size) in [(1, 768), (100, 768), (1000, 2304), (1536, 2304), (2240, 4352), (3776, 4352), (3777, 4864), (4032, 4864), (8192, 8960), (16320, 17152), (28992, 29952), (36544, 37120)] {
            assert_eq!(super::unix_stream(len), size, "unix stream {len}");
        }
        for (sndbuf, piece) in [(4608, 2240), (8192, 4032), (32768, 16320), (131072, 36544), (212992, 36544)] {
            assert_eq!(super::unix_stream_piece(sndbuf), piece, "sndbuf {sndbuf}");
        }
        for (len, size) in [(0, 832), (140, 832), (200, 1280), (500, 1280), (1000, 2304), (3000, 4352), (8000, 16640), (16000, 16640), (16010, 16842), (30000, 30832), (65000, 65832)] {
            assert_eq!(super::udp_datagram(len, false), size, "udp {len}");
        }
        for (len, size) in [(0, 832), (140, 832), (200, 1280), (990, 2304), (15990, 16640), (16000, 16832), (30000, 30832)] {
            assert_eq!(super::udp_datagram(len, true), size, "udp6 {len}");
        }
    }
}
