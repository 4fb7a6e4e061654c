//! The sandbox's own TCP/IP stack on a host interface it took over
//! (`--network=sandbox`, runsc's default): smoltcp, fed with the interface's
//! Ethernet frames through an AF_PACKET socket the runtime opened in the
//! pod's network namespace (and took the interface's addresses away from the
//! host's stack, so that only this stack answers for them). No socket call of
//! the app becomes a host socket call: the host sees frames, nothing else.
//!
//! The inet sockets (net/tcp.rs, net/udp.rs) keep serving loopback and the
//! sandbox's own addresses themselves; a connection or datagram to anywhere
//! else, and a listener or bound port on the wildcard or the interface's
//! address, also has a smoltcp socket here (`tcp.rs`: `TcpConn`,
//! `TcpListener`; `udp.rs`: `UdpPort`).
//!
//! One thread, the poller, waits for frames and for the stack's next timer
//! (a retransmission, a delayed ACK), and runs the stack then; a socket call
//! runs it itself after queueing bytes, so that sends go out without a
//! thread switch. Whoever ran it then wakes the sockets' wait queues. A task
//! that blocks on a socket of the interface waits for frames itself
//! (`block`), and the poller leaves the frames to it meanwhile: the frame
//! that answers it then costs one wake-up, not the poller's and then its own
//! (each ~40 µs on an idle CPU here).
//!
//! Lock order: an inet socket's own state, then `Netstack::stack`; wait
//! queues are notified only after the stack lock is released (their epoll
//! callbacks ask the sockets' readiness, which takes it).

mod gso;
pub mod tcp;
pub mod udp;

use super::interface::InterfaceInfo;
use super::ip_control::{Arrival, DEFAULT_TTL};
use crate::kernel::Nic;
use crate::vfs::WaitQueue;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use rvisor_platform::hostcall::socket as host;
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{self, Checksum, ChecksumCapabilities, DeviceCapabilities, Medium};
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Instant;

/// The largest frame read at once: an interface's GRO may hand a packet
/// socket segments coalesced up to IP's 64 KiB limit.
const FRAME_MAX: usize = 65536 + 14;
const SOL_PACKET: i32 = 263;
const PACKET_VNET_HDR: i32 = 15;
/// `struct virtio_net_hdr`.
const VNET_HDR: usize = 10;
/// `Netstack::wire_waiters`: one task, and the poller's flag.
const WAITER: usize = 2;
const EXCLUDED: usize = 1;
const PACKET_IGNORE_OUTGOING: i32 = 23;
/// sockaddr_ll's sll_pkttype of a frame this socket sent.
const PACKET_OUTGOING: u8 = 4;

/// An Ethernet interface as smoltcp drives it: frames in and out of the
/// AF_PACKET socket. Frames out are sent in batches, one sendmmsg per run of
/// the stack: each send makes the host deliver what came so far (and wake
/// its receiver), so fewer sends mean far fewer host wake-ups. A frame the
/// host's queue cannot take is dropped, as a full NIC queue drops it; TCP
/// sends it again.
struct PacketDevice {
    mtu: usize,
    counts: Arc<Counts>,
    /// Where a frame is read into.
    frame: Vec<u8>,
    /// Frames read and not yet given to the stack (without their
    /// `virtio_net_hdr`): read ahead of it, so that listeners can grow for
    /// the handshakes among them (`tcp::grow_pools`).
    arrived: std::collections::VecDeque<Vec<u8>>,
    out: Outbox,
}

/// Most frames read ahead at once.
const READ_AHEAD: usize = 64;

/// What went through the interface (/proc/net/dev). Atomics, read without
/// the stack lock.
#[derive(Default)]
struct Counts {
    rx_bytes: AtomicU64,
    rx_packets: AtomicU64,
    tx_bytes: AtomicU64,
    tx_packets: AtomicU64,
}

/// Frames written and not yet sent: back to back in `bytes`, ending at `ends`.
struct Outbox {
    socket: Arc<OwnedFd>,
    counts: Arc<Counts>,
    bytes: Vec<u8>,
    ends: Vec<usize>,
    /// The socket takes a `virtio_net_hdr` before each frame (`gso.rs`).
    offload: bool,
}

/// Most frames one sendmmsg takes.
const BATCH: usize = 64;

impl Outbox {
    /// Sends what is written; whether there was anything.
    fn send(&mut self) -> bool {
        if self.ends.is_empty() {
            return false;
        }
        let mut start = 0;
        let frames: Vec<&[u8]> = self.ends.iter().map(|&end| {
            let f = &self.bytes[start..end];
            start = end;
            f
        }).collect();
        let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT.bits();
        self.counts.tx_packets.fetch_add(frames.len() as u64, Ordering::Relaxed);
        self.counts.tx_bytes.fetch_add(self.bytes.len() as u64, Ordering::Relaxed);
        let joined = if self.offload { gso::coalesce(&frames) } else { Vec::new() };
        let messages: Vec<Vec<&[u8]>> = if self.offload { joined.iter().map(gso::Message::pieces).collect() } else { frames.iter().map(|f| vec![*f]).collect() };
        let _ = host::send_each(self.socket.as_fd(), &messages, flags);
        self.bytes.clear();
        self.ends.clear();
        true
    }
}

impl PacketDevice {
    /// Reads the frames that came in, up to READ_AHEAD waiting.
    fn read_ahead(&mut self) {
        while self.arrived.len() < READ_AHEAD {
            let Ok((n, from)) = host::receive(self.out.socket.as_fd(), &mut self.frame, nix::sys::socket::MsgFlags::MSG_DONTWAIT.bits()) else { return };
            // Our own frames come back unless PACKET_IGNORE_OUTGOING took.
            if from.get(10) == Some(&PACKET_OUTGOING) {
                continue;
            }
            // A frame in behind its `virtio_net_hdr`: the host may hand over
            // segments it coalesced, with checksums left to offload, which
            // the stack does not check anyway.
            let n = n.min(self.frame.len());
            let start = if self.out.offload { VNET_HDR.min(n) } else { 0 };
            self.counts.rx_packets.fetch_add(1, Ordering::Relaxed);
            self.counts.rx_bytes.fetch_add((n - start) as u64, Ordering::Relaxed);
            self.arrived.push_back(self.frame[start..n].to_vec());
        }
    }
}

impl phy::Device for PacketDevice {
    type RxToken<'a> = RxFrame<'a>;
    type TxToken<'a> = TxFrame<'a>;

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(RxFrame<'_>, TxFrame<'_>)> {
        let frame = self.arrived.pop_front()?;
        Some((RxFrame(frame, std::marker::PhantomData), TxFrame(&mut self.out)))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<TxFrame<'_>> {
        Some(TxFrame(&mut self.out))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.mtu + 14;
        // A veth peer leaves TCP and UDP checksums to be offloaded: frames
        // from the host may carry partial ones. Ours are computed.
        let mut sums = ChecksumCapabilities::default();
        sums.tcp = Checksum::Tx;
        sums.udp = Checksum::Tx;
        sums.icmpv4 = Checksum::Tx;
        sums.icmpv6 = Checksum::Tx;
        caps.checksum = sums;
        caps
    }
}

struct RxFrame<'a>(Vec<u8>, std::marker::PhantomData<&'a ()>);

impl phy::RxToken for RxFrame<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

struct TxFrame<'a>(&'a mut Outbox);

impl phy::TxToken for TxFrame<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let out = self.0;
        let start = out.bytes.len();
        out.bytes.resize(start + len, 0);
        let r = f(&mut out.bytes[start..]);
        out.ends.push(out.bytes.len());
        if out.ends.len() == BATCH {
            out.send();
        }
        r
    }
}

/// Where a TCP segment in an Ethernet frame goes, and where its TCP header
/// starts; None for anything else (IPv6 extension headers included).
fn tcp_header(frame: &[u8]) -> Option<(IpAddr, usize)> {
    const ETH_HDR: usize = 14;
    const IPPROTO_TCP: u8 = 6;
    let ip = frame.get(ETH_HDR..)?;
    let (dest, proto, ip_len): (IpAddr, u8, usize) = match u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]) {
        0x0800 => (<[u8; 4]>::try_from(ip.get(16..20)?).ok()?.into(), *ip.get(9)?, usize::from(ip.first()? & 0xf) * 4),
        0x86dd => (<[u8; 16]>::try_from(ip.get(24..40)?).ok()?.into(), *ip.get(6)?, 40),
        _ => return None,
    };
    (proto == IPPROTO_TCP && frame.len() >= ETH_HDR + ip_len + 20).then_some((dest, ETH_HDR + ip_len))
}

/// What the stack lock guards.
pub struct Stack {
    iface: Interface,
    device: PacketDevice,
    pub sockets: SocketSet<'static>,
    /// Whose wait queue to wake when a socket's state may have changed.
    waiters: HashMap<SocketHandle, Weak<WaitQueue>>,
    /// Where each UDP socket's datagrams go.
    inboxes: HashMap<SocketHandle, Weak<dyn DatagramSink>>,
    /// Closed connections still finishing (FIN, TIME_WAIT): removed when done.
    closing: Vec<SocketHandle>,
    /// When the poller wakes next by itself (None: only for a frame).
    poller_wakes: Option<smoltcp::time::Instant>,
    /// Listeners' sockets.
    pools: tcp::Pools,
    started: Instant,
    /// The interface's index, which datagrams arrive on.
    ifindex: i32,
}

impl Stack {
    fn now(&self) -> smoltcp::time::Instant {
        smoltcp::time::Instant::from_micros(self.started.elapsed().as_micros() as i64)
    }

    pub fn context(&mut self) -> &mut smoltcp::iface::Context {
        self.iface.context()
    }

    /// Wakes `queue` whenever `handle`'s state may have changed.
    pub fn watch(&mut self, handle: SocketHandle, queue: &Arc<WaitQueue>) {
        self.waiters.insert(handle, Arc::downgrade(queue));
    }

    /// Moves the datagrams `handle` receives into `inbox`.
    pub fn deliver_to(&mut self, handle: SocketHandle, inbox: Weak<dyn DatagramSink>) {
        self.inboxes.insert(handle, inbox);
    }

    /// Forgets a socket at once (an aborted or never-connected one).
    pub fn remove(&mut self, handle: SocketHandle) {
        self.waiters.remove(&handle);
        self.inboxes.remove(&handle);
        self.sockets.remove(handle);
    }

    /// Lets a closed connection finish (its FIN, TIME_WAIT) unwatched.
    pub fn retire(&mut self, handle: SocketHandle) {
        self.waiters.remove(&handle);
        self.closing.push(handle);
    }

    /// The address the stack sends from to `dest`.
    pub fn source_for(&self, dest: IpAddr) -> Option<IpAddr> {
        self.iface.get_source_address(&IpAddress::from(dest)).map(IpAddr::from)
    }

    /// Runs the stack: frames in, queued bytes out, timers. Returns what to
    /// wake and deliver once the lock is released.
    fn run(&mut self) -> Woken {
        let now = self.now();
        let mut changed = false;
        // Twice when frames went out: the host answers a frame to a local
        // peer (a SYN's SYN-ACK, data's ACK) within the send itself, and that
        // answer is best taken now, by this thread, than by the poller after
        // a wake-up.
        for _ in 0..2 {
            self.device.read_ahead();
            tcp::grow_pools(self);
            changed |= self.iface.poll(now, &mut self.device, &mut self.sockets) == PollResult::SocketStateChanged;
            if !self.device.out.send() {
                break;
            }
        }
        // A closed connection is gone once its FIN or reset is out (smoltcp's
        // TIME_WAIT is not kept: the port table holds the port for it).
        let sockets = &mut self.sockets;
        self.closing.retain(|&h| {
            let done = matches!(sockets.get::<smoltcp::socket::tcp::Socket>(h).state(), smoltcp::socket::tcp::State::Closed | smoltcp::socket::tcp::State::TimeWait);
            if done {
                sockets.remove(h);
            }
            !done
        });
        if !changed {
            return Woken::default();
        }
        let (mut datagrams, mut errors) = (Vec::new(), Vec::new());
        // smoltcp does not say what TTL or TOS a datagram came with: it shows
        // as sent with Linux's defaults.
        let ifindex = self.ifindex;
        let arrival = |dest| Arrival::now(dest, ifindex, DEFAULT_TTL, 0);
        for (&h, inbox) in &self.inboxes {
            let Some(inbox) = inbox.upgrade() else { continue };
            match self.sockets.get_mut::<smoltcp::socket::Socket>(h) {
                smoltcp::socket::Socket::Udp(s) => {
                    let port = s.endpoint().port;
                    while let Ok((data, meta)) = s.recv() {
                        let dest = meta.local_address.map_or_else(|| own_address(&self.iface, meta.endpoint.addr.into()), IpAddr::from);
                        let arrival = arrival(SocketAddr::new(dest, port));
                        datagrams.push((inbox.clone(), data.to_vec(), SocketAddr::from(meta.endpoint), arrival));
                    }
                }
                smoltcp::socket::Socket::Icmp(s) => {
                    while let Ok((data, from)) = s.recv() {
                        match udp::unreachable(data) {
                            Some((dest, errno)) => errors.push((inbox.clone(), dest, errno)),
                            None => {
                                let arrival = arrival(SocketAddr::new(own_address(&self.iface, from.into()), 0));
                                datagrams.push((inbox.clone(), data.to_vec(), SocketAddr::new(from.into(), 0), arrival))
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        Woken { queues: self.waiters.values().filter_map(Weak::upgrade).collect(), datagrams, errors }
    }
}

/// The interface's first address of `peer`'s family (where an ICMP reply
/// came to, which smoltcp does not say), else the wildcard.
fn own_address(iface: &Interface, peer: IpAddr) -> IpAddr {
    let wanted = IpAddress::from(peer);
    iface.ip_addrs().iter().map(|c| c.address()).find(|a| a.version() == wanted.version()).map_or_else(|| if peer.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() }, IpAddr::from)
}

/// A UDP socket's queue, which datagrams from the interface join.
pub trait DatagramSink: Send + Sync {
    fn deliver(&self, data: &[u8], from: SocketAddr, arrival: Arrival);
    /// An ICMP error answered a datagram it sent to `dest`.
    fn unreachable(&self, dest: SocketAddr, errno: rvisor_abi::ErrnoCode);
}

/// What a run of the stack found to wake and deliver.
#[derive(Default)]
struct Woken {
    queues: Vec<Arc<WaitQueue>>,
    datagrams: Vec<(Arc<dyn DatagramSink>, Vec<u8>, SocketAddr, Arrival)>,
    errors: Vec<(Arc<dyn DatagramSink>, SocketAddr, rvisor_abi::ErrnoCode)>,
}

impl Woken {
    fn wake(self) {
        for (inbox, data, from, arrival) in self.datagrams {
            inbox.deliver(&data, from, arrival);
        }
        for (inbox, dest, errno) in self.errors {
            inbox.unreachable(dest, errno);
        }
        for q in self.queues {
            q.notify();
        }
    }
}

/// One interface's stack, and its poller.
pub struct Netstack {
    pub info: InterfaceInfo,
    stack: Mutex<Stack>,
    /// Wakes the poller to watch the frames again.
    poke: EventFd,
    /// Fires when the stack's next timer is due (`Stack::poller_wakes`): set
    /// by whoever moves it earlier, which costs no wake-up.
    timer: TimerFd,
    /// The AF_PACKET socket, which the poller waits on without the lock.
    wire: Arc<OwnedFd>,
    counts: Arc<Counts>,
    /// Tasks waiting for frames themselves (counted in WAITER units), and
    /// whether the poller left the frames to them (EXCLUDED): one word, so
    /// that the last task to go sees whether the poller must be told.
    wire_waiters: AtomicUsize,
}

impl Netstack {
    /// Sets up the stack on `nic`, and starts its poller.
    pub fn start(nic: Nic) -> std::io::Result<Arc<Netstack>> {
        let Nic { info, packet } = nic;
        if host::set_option(packet.as_fd(), SOL_PACKET, PACKET_IGNORE_OUTGOING, &1i32.to_ne_bytes()).is_err() {
            tracing::info!("{}: PACKET_IGNORE_OUTGOING unsupported; own frames are skipped as read", info.name);
        }
        let offload = host::set_option(packet.as_fd(), SOL_PACKET, PACKET_VNET_HDR, &1i32.to_ne_bytes()).is_ok();
        if !offload {
            tracing::info!("{}: PACKET_VNET_HDR unsupported; every segment goes out alone", info.name);
        }
        let wire = Arc::new(packet);
        let counts = Arc::new(Counts::default());
        let mut device = PacketDevice { mtu: info.mtu as usize, counts: counts.clone(), frame: vec![0; FRAME_MAX], arrived: Default::default(), out: Outbox { socket: wire.clone(), counts: counts.clone(), bytes: Vec::new(), ends: Vec::new(), offload } };
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(info.mac)));
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        config.random_seed = u64::from_ne_bytes(seed);
        let started = Instant::now();
        let mut iface = Interface::new(config, &mut device, smoltcp::time::Instant::from_micros(0));
        iface.update_ip_addrs(|addrs| {
            for &(ip, prefix) in &info.addrs {
                if addrs.push(IpCidr::new(IpAddress::from(ip), prefix)).is_err() {
                    tracing::warn!("{}: more addresses than the stack holds; {ip} left out", info.name);
                }
            }
        });
        for route in &info.routes {
            let Some(gateway) = route.gateway else { continue };
            let cidr = IpCidr::new(IpAddress::from(route.dest), route.prefix);
            let r = smoltcp::iface::Route { cidr, via_router: IpAddress::from(gateway), preferred_until: None, expires_at: None };
            iface.routes_mut().update(|table| {
                if table.push(r).is_err() {
                    tracing::warn!("route table full: {cidr} via {gateway} left out");
                }
            });
        }
        let stack = Stack { iface, device, sockets: SocketSet::new(Vec::new()), waiters: HashMap::new(), inboxes: HashMap::new(), closing: Vec::new(), poller_wakes: None, pools: Default::default(), started, ifindex: info.index };
        let poke = EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)?;
        let timer = TimerFd::new(ClockId::CLOCK_MONOTONIC, TimerFlags::TFD_CLOEXEC | TimerFlags::TFD_NONBLOCK).map_err(std::io::Error::from)?;
        let ns = Arc::new(Netstack { info, stack: Mutex::new(stack), poke, timer, wire, wire_waiters: AtomicUsize::new(0), counts });
        let poller = ns.clone();
        rvisor_platform::host_cpus::spawn_unpinned(std::thread::Builder::new().name("netstack".into()), move || poller.poll_loop())?;
        Ok(ns)
    }

    /// What the interface has carried, in the stack's own frames (each TCP
    /// segment counts, also when it left joined with others).
    pub fn traffic(&self) -> super::interface::Traffic {
        let c = &self.counts;
        super::interface::Traffic {
            rx_bytes: c.rx_bytes.load(Ordering::Relaxed),
            rx_packets: c.rx_packets.load(Ordering::Relaxed),
            tx_bytes: c.tx_bytes.load(Ordering::Relaxed),
            tx_packets: c.tx_packets.load(Ordering::Relaxed),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Stack> {
        self.stack.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `ip` is one of the interface's own addresses.
    pub fn is_own(&self, ip: IpAddr) -> bool {
        self.info.addrs.iter().any(|&(a, _)| a == ip.to_canonical())
    }

    /// Whether the interface reaches `ip`: on one of its subnets, or through
    /// one of its routes.
    pub fn reaches(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let within = |net: IpAddr, prefix: u8| IpCidr::new(IpAddress::from(net), prefix).contains_addr(&IpAddress::from(ip));
        self.info.addrs.iter().any(|&(a, p)| within(a, p)) || self.info.routes.iter().any(|r| within(r.dest, r.prefix))
    }

    /// Runs `f` on the stack, then the stack itself (so that what `f` queued
    /// goes out now), then wakes whoever may care, after the lock is released.
    pub fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        let (r, wake) = {
            let mut stack = self.lock();
            let r = f(&mut stack);
            let wake = stack.run();
            let now = stack.now();
            let stack = &mut *stack;
            let next = stack.iface.poll_at(now, &stack.sockets);
            if next.is_some_and(|at| stack.poller_wakes.is_none_or(|w| at < w)) {
                self.arm(stack, next, now);
            }
            (r, wake)
        };
        wake.wake();
        r
    }

    /// Sets the poller's timer to `next` (None: no timer).
    fn arm(&self, stack: &mut Stack, next: Option<smoltcp::time::Instant>, now: smoltcp::time::Instant) {
        stack.poller_wakes = next;
        let r = match next {
            // At least a microsecond: a zero expiry would disarm it.
            Some(at) => {
                let micros = if at > now { (at - now).total_micros() } else { 1 };
                self.timer.set(Expiration::OneShot(TimeSpec::from_duration(std::time::Duration::from_micros(micros.max(1)))), TimerSetTimeFlags::empty())
            }
            None => self.timer.unset(),
        };
        if r.is_err() {
            tracing::error!("netstack: cannot set the poller's timer");
        }
    }

    /// Blocks `t` until `ready` holds (checked after each run of the stack),
    /// a signal comes (ERESTARTSYS) or `deadline` passes (ETIMEDOUT), waiting
    /// for the interface's frames itself, and for `queue` (a socket's, woken
    /// when another thread ran the stack or closed the socket).
    pub fn block(&self, t: &crate::task::Task, queue: &WaitQueue, deadline: Option<Instant>, mut ready: impl FnMut() -> bool) -> rvisor_abi::SysResult<()> {
        let Some(wake) = t.thread.host_wake() else {
            // No descriptor to wait on beside the frames: wait for the poller.
            queue.register(&t.thread);
            let r = t.block_until(deadline, ready);
            queue.unregister(&t.thread);
            return r;
        };
        queue.register_host(&t.thread);
        self.wire_waiters.fetch_add(WAITER, Ordering::SeqCst);
        // The caller ran the stack just before it came to wait.
        let r = loop {
            if ready() {
                break Ok(());
            }
            if t.signal_pending() {
                break Err(rvisor_abi::errno!(ERESTARTSYS));
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left.is_some_and(|l| l.is_zero()) {
                break Err(rvisor_abi::errno!(ETIMEDOUT));
            }
            // The stack's own timers are the poller's; this waits for frames.
            let timeout = left.map_or(PollTimeout::NONE, |l| PollTimeout::try_from(l.as_millis().max(1)).unwrap_or(PollTimeout::MAX));
            let mut fds = [PollFd::new(self.wire.as_fd(), PollFlags::POLLIN), PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
            match t.thread.waiter.asleep(|| nix::poll::poll(&mut fds, timeout)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(_) => break t.block_until(deadline, &mut ready),
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                let _ = wake.read();
            }
            // Frames came: take them (a wake-up alone means another thread did).
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                self.with(|_| ());
            }
        };
        queue.unregister(&t.thread);
        // The last one gone: the poller must watch the frames again, if it
        // had left them.
        if self.wire_waiters.fetch_sub(WAITER, Ordering::SeqCst) == WAITER | EXCLUDED {
            let _ = self.poke.write(1);
        }
        r
    }

    /// The poller: runs the stack when a frame comes or a timer is due, and
    /// sleeps otherwise (no timer at all while every connection is idle).
    fn poll_loop(self: Arc<Self>) {
        loop {
            let wake = {
                let mut stack = self.lock();
                let wake = stack.run();
                let now = stack.now();
                let stack = &mut *stack;
                let next = stack.iface.poll_at(now, &stack.sockets);
                if next != stack.poller_wakes {
                    self.arm(stack, next, now);
                }
                wake
            };
            wake.wake();
            // The frames too, unless tasks wait for them themselves.
            let excluded = self.wire_waiters.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| Some(if w >= WAITER { w | EXCLUDED } else { w & !EXCLUDED }));
            let watched = if excluded.is_ok_and(|w| w >= WAITER) { 2 } else { 3 };
            let mut fds = [PollFd::new(self.poke.as_fd(), PollFlags::POLLIN), PollFd::new(self.timer.as_fd(), PollFlags::POLLIN), PollFd::new(self.wire.as_fd(), PollFlags::POLLIN)];
            if nix::poll::poll(&mut fds[..watched], PollTimeout::NONE).is_err_and(|e| e != nix::errno::Errno::EINTR) {
                tracing::error!("netstack poller: poll failed; the interface stops");
                return;
            }
            if fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
                let _ = self.poke.read();
            }
            if fds[1].revents().is_some_and(|r| r.contains(PollFlags::POLLIN)) {
                let _ = self.timer.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tcp::{Sent, TcpConn, TcpListener, Tuning};
    use super::*;
    use crate::net::interface::RouteInfo;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};

    /// Two stacks whose "interfaces" are the ends of a datagram socketpair,
    /// one frame per datagram, as an AF_PACKET socket gives them.
    fn pair() -> (Arc<Netstack>, Arc<Netstack>) {
        let (a, b) = socketpair(AddressFamily::Unix, SockType::Datagram, None, SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC).unwrap();
        let nic = |fd, n: u8| Nic {
            info: InterfaceInfo {
                name: format!("eth{n}"),
                index: 2,
                mac: [2, 0, 0, 0, 0, n],
                mtu: 1500,
                addrs: vec![(IpAddr::from([10, 9, 0, n]), 24)],
                routes: vec![RouteInfo { dest: IpAddr::from([0, 0, 0, 0]), prefix: 0, gateway: Some(IpAddr::from([10, 9, 0, 254])) }],
            },
            packet: fd,
        };
        (Netstack::start(nic(a, 1)).unwrap(), Netstack::start(nic(b, 2)).unwrap())
    }

    /// Waits (bounded) for `f` to hold; the stacks run on their pollers.
    fn eventually(mut f: impl FnMut() -> bool) {
        let end = Instant::now() + std::time::Duration::from_secs(10);
        while !f() {
            assert!(Instant::now() < end, "timed out");
            std::thread::yield_now();
        }
    }

    #[test]
    fn tcp_connects_carries_bytes_and_closes() {
        let (a, b) = pair();
        let q = Arc::new(WaitQueue::default());
        let mut listener = TcpListener::new(&b, &q, "0.0.0.0:80".parse().unwrap(), 4).unwrap();
        assert!(a.reaches("10.9.0.2".parse().unwrap()) && a.reaches("8.8.8.8".parse().unwrap()));
        let client = TcpConn::connect(&a, &q, "0.0.0.0:40000".parse().unwrap(), "10.9.0.2:80".parse().unwrap(), Tuning::default()).unwrap();
        eventually(|| client.handshake() == Ok(true));
        eventually(|| listener.ready());
        // A second connection waits beside the first (a backlog of smoltcp sockets).
        let second = TcpConn::connect(&a, &q, "0.0.0.0:40002".parse().unwrap(), "10.9.0.2:80".parse().unwrap(), Tuning::default()).unwrap();
        eventually(|| second.handshake() == Ok(true));
        let server = listener.accept().unwrap().unwrap();
        assert_eq!(server.endpoints().1, Some("10.9.0.1:40000".parse().unwrap()));
        eventually(|| listener.ready());
        assert_eq!(listener.accept().unwrap().unwrap().endpoints().1, Some("10.9.0.1:40002".parse().unwrap()));
        let big: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let (mut sent, mut got) = (0, Vec::new());
        while got.len() < big.len() {
            if sent < big.len() {
                if let Sent::Queued(n) = client.send(&big[sent..]) {
                    sent += n;
                }
            }
            if let Some(more) = server.receive(1 << 20, false) {
                got.extend_from_slice(&more);
            }
            std::thread::yield_now();
        }
        assert!(got == big);
        client.shut_write();
        eventually(|| server.receive(10, false) == Some(Vec::new()));
        assert!(!server.was_reset());
    }

    #[test]
    fn tcp_to_a_closed_port_is_refused() {
        let (a, _b) = pair();
        let q = Arc::new(WaitQueue::default());
        let client = TcpConn::connect(&a, &q, "0.0.0.0:40001".parse().unwrap(), "10.9.0.2:81".parse().unwrap(), Tuning::default()).unwrap();
        eventually(|| client.handshake().is_err());
        assert_eq!(client.handshake().unwrap_err().code, rvisor_abi::ErrnoCode::ECONNREFUSED);
    }

    #[derive(Default)]
    struct Inbox(Mutex<Vec<(Vec<u8>, SocketAddr, Arrival)>>);

    impl DatagramSink for Inbox {
        fn deliver(&self, data: &[u8], from: SocketAddr, arrival: Arrival) {
            self.0.lock().unwrap().push((data.to_vec(), from, arrival));
        }

        fn unreachable(&self, _dest: SocketAddr, _errno: rvisor_abi::ErrnoCode) {}
    }

    #[test]
    fn udp_datagrams_reach_the_bound_port() {
        let (a, b) = pair();
        let inbox = Arc::new(Inbox::default());
        let sink: Arc<dyn DatagramSink> = inbox.clone();
        let _server = super::udp::UdpPort::bind(&b, "0.0.0.0:53".parse().unwrap(), Arc::downgrade(&sink), super::udp::PortKind::Udp).unwrap();
        let client = super::udp::UdpPort::bind(&a, "0.0.0.0:5353".parse().unwrap(), Weak::<Inbox>::new(), super::udp::PortKind::Udp).unwrap();
        client.send(b"query", "10.9.0.2:53".parse().unwrap(), None).unwrap();
        eventually(|| !inbox.0.lock().unwrap().is_empty());
        let (data, from, arrival) = inbox.0.lock().unwrap()[0].clone();
        assert_eq!((data, from), (b"query".to_vec(), "10.9.0.1:5353".parse().unwrap()));
        assert_eq!((arrival.dest, arrival.ifindex, arrival.ttl, arrival.tos), ("10.9.0.2:53".parse().unwrap(), 2, DEFAULT_TTL, 0));
    }
}
