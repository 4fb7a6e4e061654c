//! `rvisor do -p HOST_PORT:SANDBOX_PORT`: a host port forwarded to a server
//! listening on the sandbox's own loopback (network mode none), as `docker run
//! -p` publishes one. Bytes go both ways (megabytes of them, at once), a
//! half-close reaches the server as EOF and its reply still comes back,
//! connections are relayed side by side, IPv4
//! and IPv6 host clients reach it (each through loopback of its own family
//! when the server listens on both), in network mode sandbox too, resets pass both ways, a port nothing
//! listens on resets the host's connection, and an idle forwarded connection
//! costs no CPU. UDP datagrams (`/udp`) go to the sandbox's server and its
//! answers back to the client each answers. Bad flags, a host port in use and `-p` with
//! `--network=host` are refused with exit status 125 and a message.

mod common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

const PYTHON: &str = "/usr/bin/python3";
/// This file's subnets (see `Netns`).
const NET: u8 = 215;

/// Echoes each connection's bytes as they come, then, at EOF, a line with
/// their count and Adler-32, and closes. Listens on [::] (IPv4 too) port
/// 8000; serves argv[1] connections: one after another, printing each peer's
/// address, or with argv[2] "threads" all at once, a thread each, printing
/// "all served" at the end.
const ECHO: &str = r#"
import socket, sys, threading, zlib
l = socket.socket(socket.AF_INET6)
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("::", 8000))
l.listen(16)
print("listening", flush=True)
def serve(c):
    n, a = 0, 1
    while True:
        d = c.recv(1 << 16)
        if not d:
            break
        n += len(d)
        a = zlib.adler32(d, a)
        c.sendall(d)
    c.sendall(f"{n} {a}\n".encode())
    c.close()
threads = []
for _ in range(int(sys.argv[1])):
    c, peer = l.accept()
    if sys.argv[2:] == ["threads"]:
        threads.append(threading.Thread(target=serve, args=(c,)))
        threads[-1].start()
    else:
        serve(c)
        print("served", peer[0], flush=True)
for t in threads:
    t.join()
if threads:
    print("all served", flush=True)
"#;
/// Nothing listens until a line comes on stdin; then, on 127.0.0.1:8000: a
/// connection the server shuts down for writing first (and then reads to EOF),
/// one closed with bytes unread (a reset), then one the host resets.
const RESETS: &str = r#"
import socket, sys
print("nothing listens", flush=True)
sys.stdin.readline()
l = socket.socket()
l.bind(("127.0.0.1", 8000))
l.listen(4)
print("listening", flush=True)
c, _ = l.accept()
c.sendall(b"hello")
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    d = c.recv(1 << 16)
    if not d:
        break
    n += len(d)
print("read after its shutdown", n, flush=True)
c.close()
c, _ = l.accept()
c.recv(1)
c.sendall(b"k")
c.recv(1, socket.MSG_PEEK)
c.close()
print("closed with bytes unread", flush=True)
c, _ = l.accept()
c.sendall(b"k")
try:
    print("host's close read", c.recv(100), flush=True)
except ConnectionResetError:
    print("host reset", flush=True)
"#;

/// A host port free on every address, IPv4 and IPv6 (as the sandbox asks for
/// by default).
fn free_port() -> u16 {
    let l = TcpListener::bind("[::]:0").or_else(|_| TcpListener::bind("0.0.0.0:0")).expect("a free port");
    l.local_addr().expect("its address").port()
}

fn host_has_ipv6() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).map_err(|e| format!("connect to {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout())).map_err(|e| e.to_string())?;
    Ok(s)
}

/// Sends `len` bytes through `addr` while reading the echo, half-closes, and
/// checks the echo and the server's count and checksum after it, then EOF.
fn echo_through(addr: SocketAddr, len: usize, seed: u64) -> Result<(), String> {
    let mut s = connect(addr)?;
    let data = pseudo_random_bytes(len, seed);
    let want_tail = format!("{len} {}\n", adler32(&data));
    let mut w = s.try_clone().map_err(|e| e.to_string())?;
    let writer = std::thread::spawn(move || {
        let r = w.write_all(&data).and_then(|()| w.shutdown(Shutdown::Write));
        (r, data)
    });
    let mut got = Vec::new();
    let read = s.read_to_end(&mut got);
    let (written, data) = writer.join().map_err(|_| "the writer panicked".to_string())?;
    written.map_err(|e| format!("{addr}: send: {e}"))?;
    read.map_err(|e| format!("{addr}: receive (after {} bytes): {e}", got.len()))?;
    if got.len() != len + want_tail.len() || got[..len] != data[..] {
        return Err(format!("{addr}: the echo differs: {} bytes back for {len} sent (first difference at {:?})", got.len(), got.iter().zip(&data).position(|(a, b)| a != b)));
    }
    let tail = String::from_utf8_lossy(&got[len..]);
    if tail != want_tail {
        return Err(format!("{addr}: the server counted {tail:?}, want {want_tail:?}"));
    }
    Ok(())
}

#[test]
fn forwards_a_tcp_stream_both_ways() {
    matrix("forwards_a_tcp_stream_both_ways", &[Link::Static], |v| {
        let port = free_port();
        let v6 = host_has_ipv6();
        let connections = if v6 { 2 } else { 1 };
        let spec = Spec::args(["-c", ECHO, &connections.to_string()]);
        let publish = format!("{port}:8000");
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["-p", &publish], Path::new(PYTHON), &spec));
        run.expect_line("listening")?;
        echo_through(SocketAddr::from(([127, 0, 0, 1], port)), 12 << 20, 1)?;
        // The relay connects to 127.0.0.1 in the sandbox for an IPv4 client...
        run.expect_line("served ::ffff:127.0.0.1")?;
        if v6 {
            echo_through(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)), 3 << 20, 2)?;
            // ...and to ::1 for an IPv6 one.
            run.expect_line("served ::1")?;
        }
        run.succeeds()
    });
}

#[test]
fn relays_connections_side_by_side() {
    matrix("relays_connections_side_by_side", &[Link::Static], |v| {
        const CONNECTIONS: u64 = 6;
        let port = free_port();
        let publish = format!("{port}:8000");
        let spec = Spec::args(["-c", ECHO, &CONNECTIONS.to_string(), "threads"]);
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["-p", &publish], Path::new(PYTHON), &spec));
        run.expect_line("listening")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let clients: Vec<_> = (0..CONNECTIONS).map(|i| std::thread::spawn(move || echo_through(addr, 1 << 20, 10 + i))).collect();
        for c in clients {
            c.join().map_err(|_| "a client panicked".to_string())??;
        }
        run.expect_line("all served")?;
        run.succeeds()
    });
}

/// In a network namespace of its own, with the sandbox's own stack on its
/// interface (`--network=sandbox`): the host port is still the caller's (the
/// listener is opened before the namespace is joined), and a connection still
/// reaches the server through the sandbox's loopback.
#[test]
fn forwards_with_the_sandbox_network_stack() {
    matrix("forwards_with_the_sandbox_network_stack", &[Link::Static], |v| {
        let ns = Netns::new(NET)?;
        let port = free_port();
        let publish = format!("{port}:8000");
        let netns = ns.path();
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["--netns", &netns, "-p", &publish], Path::new(PYTHON), &Spec::args(["-c", ECHO, "1"])));
        run.expect_line("listening")?;
        echo_through(SocketAddr::from(([127, 0, 0, 1], port)), 4 << 20, 3)?;
        run.expect_line("served ::ffff:127.0.0.1")?;
        run.succeeds()
    });
}

#[test]
fn shutdowns_and_resets_pass_both_ways() {
    matrix("shutdowns_and_resets_pass_both_ways", &[Link::Static], |v| {
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let publish = format!("127.0.0.1:{port}:8000");
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["-p", &publish], Path::new(PYTHON), &Spec::args(["-c", RESETS])));
        run.expect_line("nothing listens")?;
        // The host accepted it; the sandbox has no listener: reset (or at
        // least closed), not left hanging. The reset may come before the
        // client's connect has looked at its socket again: then connect says it.
        let mut buf = [0u8; 16];
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => return Err(format!("connect to {addr}: {e}")),
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout())).map_err(|e| e.to_string())?;
                match s.read(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                    Ok(0) => {}
                    other => return Err(format!("a connection to a port nothing listens on read {other:?}")),
                }
            }
        }
        run.send_line()?;
        run.expect_line("listening")?;
        // The server shuts down writing: the host reads EOF after its bytes,
        // and still sends until it shuts down writing in turn.
        let mut s = connect(addr)?;
        let mut hello = Vec::new();
        s.read_to_end(&mut hello).map_err(|e| format!("reading up to the server's shutdown: {e}"))?;
        if hello != b"hello" {
            return Err(format!("before the server's shutdown the host read {:?}", String::from_utf8_lossy(&hello)));
        }
        s.write_all(&pseudo_random_bytes(1 << 20, 5)).map_err(|e| format!("sending after the server's shutdown: {e}"))?;
        s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        run.expect_line("read after its shutdown 1048576")?;
        match s.read(&mut buf) {
            Ok(0) => {}
            other => return Err(format!("after the server's close the host read {other:?}, not EOF")),
        }
        // The server closes with bytes unread: the host reads a reset.
        let mut s = connect(addr)?;
        s.write_all(b"a").map_err(|e| e.to_string())?;
        let mut k = [0u8; 1];
        s.read_exact(&mut k).map_err(|e| format!("the server's k: {e}"))?;
        // Small enough for one write into the host socket's buffer, so that
        // the reset cannot come before the write returns.
        s.write_all(&[7u8; 4096]).map_err(|e| e.to_string())?;
        run.expect_line("closed with bytes unread")?;
        match s.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            other => return Err(format!("after the server closed with bytes unread, the host read {other:?}, not a reset")),
        }
        // The host resets (SO_LINGER 0): the server reads ECONNRESET.
        let mut s = connect(addr)?;
        s.read_exact(&mut k).map_err(|e| format!("the server's k: {e}"))?;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt reads one `linger` from the pointer.
        let r = unsafe { libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_LINGER, (&linger as *const libc::linger).cast(), std::mem::size_of::<libc::linger>() as libc::socklen_t) };
        if r != 0 {
            return Err(format!("SO_LINGER: {}", std::io::Error::last_os_error()));
        }
        drop(s);
        run.expect_line("host reset")?;
        run.succeeds()
    });
}

/// User plus system CPU time of a process and its threads, from /proc/PID/stat.
fn cpu_time(pid: libc::pid_t) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, r)| r).split_whitespace().collect();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok())).sum();
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(ticks * 1000 / hz)
}

#[test]
fn an_idle_forwarded_connection_costs_no_cpu() {
    matrix("an_idle_forwarded_connection_costs_no_cpu", &[Link::Static], |v| {
        let port = free_port();
        let publish = format!("{port}:8000");
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["-p", &publish], Path::new(PYTHON), &Spec::args(["-c", ECHO, "1"])));
        run.expect_line("listening")?;
        let mut s = connect(SocketAddr::from(([127, 0, 0, 1], port)))?;
        s.write_all(b"ping").map_err(|e| e.to_string())?;
        let mut echo = [0u8; 4];
        s.read_exact(&mut echo).map_err(|e| e.to_string())?;
        // Both ends now wait: the server in recv, the relay in poll. Measure
        // the whole sandbox (Sentry threads and stubs) over a second of idleness.
        let tree = || process_tree(run.pid());
        let before: Duration = tree().into_iter().map(cpu_time).sum();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs(1));
        let used = tree().into_iter().map(cpu_time).sum::<Duration>().saturating_sub(before);
        let wall = start.elapsed();
        s.shutdown(Shutdown::Write).map_err(|e| e.to_string())?;
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        if rest != b"4 71434671\n" {
            return Err(format!("the server counted {:?}", String::from_utf8_lossy(&rest)));
        }
        run.expect_line("served ::ffff:127.0.0.1")?;
        run.succeeds()?;
        if used > wall / 5 {
            return Err(format!("the sandbox used {used:?} of CPU in {wall:?} with a forwarded connection idle"));
        }
        Ok(())
    });
}

/// Answers each datagram on 127.0.0.1 and ::1 port 8000 with "echo:" and
/// it, to its sender, until "quit".
const UDP_ECHO: &str = r#"
import select, socket
socks = []
for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
    u = socket.socket(family, socket.SOCK_DGRAM)
    u.bind((host, 8000))
    socks.append(u)
print("bound", flush=True)
n = 0
while True:
    for u in select.select(socks, [], [])[0]:
        data, peer = u.recvfrom(65536)
        if data == b"quit":
            print("served", n, flush=True)
            raise SystemExit
        n += 1
        u.sendto(b"echo:" + data, peer)
"#;

fn udp_round_trip(sock: &std::net::UdpSocket, to: SocketAddr, data: &[u8]) -> Result<(), String> {
    sock.send_to(data, to).map_err(|e| format!("send to {to}: {e}"))?;
    let mut buf = vec![0u8; 70000];
    let (n, from) = sock.recv_from(&mut buf).map_err(|e| format!("{to}: no answer to {} bytes: {e}", data.len()))?;
    if from != to || buf[..n] != [b"echo:", data].concat()[..] {
        return Err(format!("{to}: {n} bytes from {from} are not the echo of {} bytes", data.len()));
    }
    Ok(())
}

#[test]
fn forwards_udp_datagrams_to_each_client() {
    matrix("forwards_udp_datagrams_to_each_client", &[Link::Static], |v| {
        let port = std::net::UdpSocket::bind("[::]:0").or_else(|_| std::net::UdpSocket::bind("0.0.0.0:0")).and_then(|s| s.local_addr()).map_err(|e| e.to_string())?.port();
        let publish = format!("{port}:8000/udp");
        let mut run = Interactive::spawn(sandbox_command(v.platform, &["-p", &publish], Path::new(PYTHON), &Spec::args(["-c", UDP_ECHO])));
        run.expect_line("bound")?;
        let v4 = SocketAddr::from(([127, 0, 0, 1], port));
        let client = |bind: &str| -> Result<std::net::UdpSocket, String> {
            let s = std::net::UdpSocket::bind(bind).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(Duration::from_secs(20))).map_err(|e| e.to_string())?;
            Ok(s)
        };
        // Two clients, interleaved: each hears only its own answers.
        let (a, b) = (client("127.0.0.1:0")?, client("127.0.0.1:0")?);
        udp_round_trip(&a, v4, b"from a")?;
        udp_round_trip(&b, v4, b"from b")?;
        udp_round_trip(&a, v4, &pseudo_random_bytes(60000, 4))?;
        udp_round_trip(&b, v4, b"")?;
        let mut served = 4;
        if host_has_ipv6() {
            let c = client("[::1]:0")?;
            udp_round_trip(&c, SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)), b"from c")?;
            served += 1;
        }
        a.send_to(b"quit", v4).map_err(|e| e.to_string())?;
        run.expect_line(&format!("served {served}"))?;
        run.succeeds()
    });
}

/// `rvisor do` with `flags`, which must fail with exit status 125 and a
/// message saying `why`.
fn refused(platform: &str, flags: &[&str], why: &str) -> Result<(), String> {
    let o = run_sandbox_flags(platform, flags, Path::new("/bin/true"), &Spec::args(Vec::<&str>::new()));
    sane(&o)?;
    expect_status(&o, 125).map_err(|e| format!("{flags:?}: {e}\n{}", o.describe()))?;
    let err = o.stderr_str();
    if !err.starts_with("rvisor: ") || !err.contains(why) {
        return Err(format!("{flags:?}: want a message saying {why:?}\n{}", o.describe()));
    }
    Ok(())
}

#[test]
fn bad_publish_flags_are_refused() {
    matrix("bad_publish_flags_are_refused", &[Link::Static], |v| {
        all([
            refused(v.platform, &["-p", "8000"], "-p 8000: want [HOST_IP:]HOST_PORT:SANDBOX_PORT"),
            refused(v.platform, &["-p", "x:8000"], "host port \"x\" is not a port"),
            refused(v.platform, &["-p", "8080:99999"], "sandbox port \"99999\" is not a port"),
            refused(v.platform, &["-p", "0:8000"], "host port \"0\" is not a port"),
            refused(v.platform, &["-p", "nohost:8080:8000"], "\"nohost\" is not an IP address"),
            refused(v.platform, &["-p", "8080:8000/sctp"], "unknown protocol \"sctp\""),
        ])
    });
}

#[test]
fn a_host_port_in_use_fails_the_boot() {
    matrix("a_host_port_in_use_fails_the_boot", &[Link::Static], |v| {
        let taken = TcpListener::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        let port = taken.local_addr().map_err(|e| e.to_string())?.port();
        let publish = format!("{port}:8000");
        let udp_taken = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        let udp_port = udp_taken.local_addr().map_err(|e| e.to_string())?.port();
        let udp_publish = format!("{udp_port}:8000/udp");
        all([
            refused(v.platform, &["-p", &publish], &format!("-p {publish}: host port 0.0.0.0:{port} is already in use")),
            refused(v.platform, &["-p", &udp_publish], &format!("-p {udp_publish}: host port 0.0.0.0:{udp_port} is already in use")),
        ])
    });
}

#[test]
fn host_network_refuses_publish() {
    matrix("host_network_refuses_publish", &[Link::Static], |v| {
        refused(v.platform, &["--network=host", "-p", "8080:8000"], "with --network=host the sandbox already shares the host's ports")
    });
}
