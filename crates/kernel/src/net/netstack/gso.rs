//! Segmentation offload for the frames the stack sends: the AF_PACKET socket
//! takes a `virtio_net_hdr` before each frame (PACKET_VNET_HDR), which lets
//! one frame carry a run of consecutive TCP segments of one connection that
//! the host cuts up again only if it must (GSO). A veth hands such a frame
//! to the peer's stack whole, so the host's TCP receives, checksums and wakes
//! its reader once per run rather than once per MTU-sized segment, which was
//! most of what a bulk send cost.
//!
//! smoltcp knows nothing of this: it emits MSS-sized segments as usual, and
//! `coalesce` joins the runs it finds among the frames of one batch.

/// `struct virtio_net_hdr` (without the mergeable-buffers count).
const VNET_HDR: usize = 10;
const F_NEEDS_CSUM: u8 = 1;
const GSO_TCPV4: u8 = 1;
const GSO_TCPV6: u8 = 4;

const ETH_HDR: usize = 14;
const IPPROTO_TCP: u8 = 6;
/// TCP flags a segment of a run may carry: ACK, and PSH on the last.
const TCP_ACK: u8 = 0x10;
const TCP_PSH: u8 = 0x08;
/// The largest IP packet (its length fields are 16 bits).
const IP_MAX: usize = 65535;

/// Where the parts of a TCP segment in an Ethernet frame are.
#[derive(Clone, Copy)]
struct Segment {
    v6: bool,
    /// Where the TCP header starts, and its length.
    tcp: usize,
    tcp_len: usize,
    seq: u32,
    flags: u8,
}

impl Segment {
    /// A TCP segment that may join a run: IPv4 without options or IPv6
    /// without extension headers, with payload, flags no more than ACK|PSH.
    fn parse(frame: &[u8]) -> Option<Segment> {
        let (dest, tcp) = super::tcp_header(frame)?;
        let v6 = dest.is_ipv6();
        let tcp_len = usize::from(*frame.get(tcp + 12)? >> 4) * 4;
        let flags = *frame.get(tcp + 13)?;
        // IPv4 options would have to be copied into every segment: not joined.
        if (!v6 && tcp != ETH_HDR + 20) || tcp_len < 20 || frame.len() <= tcp + tcp_len || flags & !(TCP_ACK | TCP_PSH) != 0 {
            return None;
        }
        let seq = u32::from_be_bytes(frame.get(tcp + 4..tcp + 8)?.try_into().ok()?);
        Some(Segment { v6, tcp, tcp_len, seq, flags })
    }

    fn payload(&self, frame: &[u8]) -> usize {
        frame.len() - self.tcp - self.tcp_len
    }

    /// Whether `next` continues the run `self` (in `frame`) ends, `first`
    /// began and `total` bytes of IP packet hold: the same addresses, ports
    /// and header size (options included), the next bytes, no PSH before
    /// the end, whole segments but for the last, room left.
    fn continues(&self, frame: &[u8], next: &Segment, next_frame: &[u8], first: &[u8], total: usize) -> bool {
        let fixed = |f: &[u8]| -> Option<Vec<u8>> {
            // MACs, ethertype, the IP addresses, ports, and TCP options.
            let addrs = if next.v6 { f.get(ETH_HDR + 8..ETH_HDR + 40)? } else { f.get(ETH_HDR + 12..ETH_HDR + 20)? };
            Some([f.get(..ETH_HDR)?, addrs, f.get(next.tcp..next.tcp + 4)?, f.get(next.tcp + 20..next.tcp + next.tcp_len)?].concat())
        };
        let mss = Segment::parse(first).map_or(0, |s| s.payload(first));
        next.v6 == self.v6
            && next.tcp_len == self.tcp_len
            && self.flags & TCP_PSH == 0
            && self.payload(frame) == mss
            && next.seq == self.seq.wrapping_add(self.payload(frame) as u32)
            && next.payload(next_frame) <= mss
            && total + next.payload(next_frame) <= IP_MAX
            && fixed(frame).is_some_and(|a| fixed(next_frame) == Some(a))
    }
}

/// The one's-complement sum of `bytes` (big-endian words), not folded.
fn sum(bytes: &[u8]) -> u32 {
    bytes.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]))).sum()
}

fn fold(mut s: u32) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// One message for the packet socket: a header this module wrote (the
/// `virtio_net_hdr`, then for a run the first segment's headers, patched),
/// followed by pieces of the stack's frames, sent from where they are: a
/// run's payload is not copied again on its way to the host.
pub struct Message<'a> {
    head: Vec<u8>,
    body: Vec<&'a [u8]>,
}

impl<'a> Message<'a> {
    /// The message's bytes, in order, as pieces for one vectored send.
    pub fn pieces(&self) -> Vec<&[u8]> {
        std::iter::once(self.head.as_slice()).chain(self.body.iter().copied()).collect()
    }
}

/// A frame as the socket sends it, behind a header that asks for nothing.
fn plain(frame: &[u8]) -> Message<'_> {
    Message { head: vec![0u8; VNET_HDR], body: vec![frame] }
}

/// One frame for a run of segments (at least two): the first's headers with
/// the last's acknowledgement and window, every payload, and a header asking
/// the host to checksum and, if it must, cut it up again at the first's size.
fn joined<'a>(run: &[&'a [u8]]) -> Message<'a> {
    let (first, last) = (run[0], run[run.len() - 1]);
    let (Some(seg), Some(end)) = (Segment::parse(first), Segment::parse(last)) else { return Message { head: Vec::new(), body: Vec::new() } };
    let headers = seg.tcp + seg.tcp_len;
    let payload: usize = run.iter().map(|f| f.len() - headers).sum();
    let mut out = vec![0u8; VNET_HDR];
    out[0] = F_NEEDS_CSUM;
    out[1] = if seg.v6 { GSO_TCPV6 } else { GSO_TCPV4 };
    out[2..4].copy_from_slice(&(headers as u16).to_le_bytes());
    out[4..6].copy_from_slice(&(seg.payload(first) as u16).to_le_bytes());
    out[6..8].copy_from_slice(&(seg.tcp as u16).to_le_bytes());
    out[8..10].copy_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(&first[..headers]);
    let ip = VNET_HDR + ETH_HDR;
    let tcp = VNET_HDR + seg.tcp;
    let tcp_total = seg.tcp_len + payload;
    // The last segment's acknowledgement, window and PSH.
    out[tcp + 8..tcp + 12].copy_from_slice(&last[end.tcp + 8..end.tcp + 12]);
    out[tcp + 14..tcp + 16].copy_from_slice(&last[end.tcp + 14..end.tcp + 16]);
    out[tcp + 13] = seg.flags | (end.flags & TCP_PSH);
    let addrs = if seg.v6 {
        out[ip + 4..ip + 6].copy_from_slice(&(tcp_total as u16).to_be_bytes());
        sum(&out[ip + 8..ip + 40])
    } else {
        out[ip + 2..ip + 4].copy_from_slice(&((20 + tcp_total) as u16).to_be_bytes());
        out[ip + 10..ip + 12].fill(0);
        let check = !fold(sum(&out[ip..ip + 20]));
        out[ip + 10..ip + 12].copy_from_slice(&check.to_be_bytes());
        sum(&out[ip + 12..ip + 20])
    };
    // A partial checksum: the pseudo-header's sum, which the host completes
    // over the segment (for each segment, if it cuts them).
    let pseudo = fold(addrs + u32::from(IPPROTO_TCP) + tcp_total as u32);
    out[tcp + 16..tcp + 18].copy_from_slice(&pseudo.to_be_bytes());
    Message { head: out, body: run.iter().map(|f| &f[headers..]).collect() }
}

/// The messages for a batch of frames, in order: runs of consecutive TCP
/// segments joined, every other frame as it is.
pub fn coalesce<'a>(frames: &[&'a [u8]]) -> Vec<Message<'a>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < frames.len() {
        let mut j = i + 1;
        if let Some(mut seg) = Segment::parse(frames[i]) {
            let mut total = seg.payload(frames[i]) + seg.tcp_len + if seg.v6 { 0 } else { 20 };
            while let Some(next) = frames.get(j).and_then(|f| Segment::parse(f)) {
                if !seg.continues(frames[j - 1], &next, frames[j], frames[i], total) {
                    break;
                }
                total += next.payload(frames[j]);
                seg = next;
                j += 1;
            }
        }
        out.push(if j - i > 1 { joined(&frames[i..j]) } else { plain(frames[i]) });
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet+IPv4+TCP frame with `payload` bytes of `fill` at `seq`.
    fn segment(seq: u32, payload: usize, flags: u8, fill: u8) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HDR + 40 + payload];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        f[ETH_HDR] = 0x45;
        f[ETH_HDR + 2..ETH_HDR + 4].copy_from_slice(&((40 + payload) as u16).to_be_bytes());
        f[ETH_HDR + 9] = IPPROTO_TCP;
        f[ETH_HDR + 12..ETH_HDR + 20].copy_from_slice(&[10, 0, 0, 2, 10, 0, 0, 1]);
        let t = ETH_HDR + 20;
        f[t..t + 4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        f[t + 4..t + 8].copy_from_slice(&seq.to_be_bytes());
        f[t + 8..t + 12].copy_from_slice(&seq.wrapping_mul(3).to_be_bytes());
        f[t + 12] = 5 << 4;
        f[t + 13] = flags;
        f[t + 14..t + 16].copy_from_slice(&(seq as u16).to_be_bytes());
        f[t + 20..].fill(fill);
        f
    }

    #[test]
    fn a_run_becomes_one_offloaded_frame() {
        let frames = [segment(1000, 1448, TCP_ACK, 1), segment(2448, 1448, TCP_ACK, 2), segment(3896, 100, TCP_ACK | TCP_PSH, 3)];
        let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
        let out = coalesce(&refs);
        assert_eq!(out.len(), 1);
        let m = &out[0].pieces().concat();
        assert_eq!((m[0], m[1]), (F_NEEDS_CSUM, GSO_TCPV4));
        assert_eq!(u16::from_le_bytes([m[4], m[5]]), 1448);
        assert_eq!(u16::from_le_bytes([m[6], m[7]]), 34);
        let f = &m[VNET_HDR..];
        assert_eq!(f.len(), ETH_HDR + 40 + 1448 * 2 + 100);
        assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, 40 + 1448 * 2 + 100);
        assert_eq!(fold(sum(&f[ETH_HDR..ETH_HDR + 20])), 0xffff, "IPv4 header checksum");
        let t = ETH_HDR + 20;
        assert_eq!(u32::from_be_bytes(f[t + 4..t + 8].try_into().unwrap()), 1000);
        assert_eq!(&f[t + 8..t + 12], &frames[2][t + 8..t + 12], "the last acknowledgement");
        assert_eq!(f[t + 13], TCP_ACK | TCP_PSH);
        assert_eq!((f[t + 20], f[t + 20 + 1448], f[f.len() - 1]), (1, 2, 3));
    }

    #[test]
    fn what_cannot_join_stays_apart() {
        let gap = [segment(1000, 1448, TCP_ACK, 0), segment(9999, 1448, TCP_ACK, 0)];
        let pushed = [segment(1000, 1448, TCP_ACK | TCP_PSH, 0), segment(2448, 1448, TCP_ACK, 0)];
        let short_first = [segment(1000, 500, TCP_ACK, 0), segment(1500, 1448, TCP_ACK, 0)];
        let fin = [segment(1000, 1448, TCP_ACK, 0), segment(2448, 10, TCP_ACK | 0x01, 0)];
        for frames in [&gap[..], &pushed[..], &short_first[..], &fin[..]] {
            let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
            let out = coalesce(&refs);
            assert_eq!(out.len(), 2);
            assert!(out.iter().map(|m| m.pieces().concat()).zip(frames).all(|(m, f)| m[..VNET_HDR] == [0; VNET_HDR] && &m[VNET_HDR..] == f.as_slice()));
        }
    }
}
