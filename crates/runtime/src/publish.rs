//! `rvisor do -p [HOST_IP:]HOST_PORT:SANDBOX_PORT[/tcp|/udp]`: host ports forwarded
//! into the sandbox, as `docker run -p` publishes them. This parses the flag and
//! opens the host's listening sockets at boot, in the caller's network
//! namespace (before `--netns` is joined) and before the Sentry's seccomp
//! filter, which allows no new socket, bind or listen outside host network
//! mode; the kernel's `net::forward` accepts on them and relays each connection
//! to the sandbox's own loopback.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};

/// One `-p` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// The host address to listen on; None: every address, IPv4 and IPv6.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub sandbox_port: u16,
    /// `/udp` (else TCP).
    #[serde(default)]
    pub udp: bool,
    /// The flag as given, for messages.
    pub spec: String,
}

const USAGE: &str = "want [HOST_IP:]HOST_PORT:SANDBOX_PORT[/tcp|/udp]";

fn port(spec: &str, what: &str, s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(format!("-p {spec}: {what} {s:?} is not a port (1-65535); {USAGE}")),
    }
}

/// Parses one `-p` value.
pub fn parse(spec: &str) -> Result<Publish, String> {
    let (body, protocol) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, p),
        None => (spec, "tcp"),
    };
    let udp = match protocol {
        "tcp" => false,
        "udp" => true,
        _ => return Err(format!("-p {spec}: unknown protocol {protocol:?}; {USAGE}")),
    };
    // The host address may be IPv6, with or without brackets: the ports are
    // the last two fields.
    let mut fields = body.rsplitn(3, ':');
    let (sandbox, host, ip) = (fields.next().unwrap_or_default(), fields.next(), fields.next());
    let Some(host) = host else { return Err(format!("-p {spec}: {USAGE}")) };
    let host_ip = match ip {
        None => None,
        Some(ip) => {
            let bare = ip.strip_prefix('[').and_then(|i| i.strip_suffix(']')).unwrap_or(ip);
            Some(bare.parse::<IpAddr>().map_err(|_| format!("-p {spec}: {ip:?} is not an IP address; {USAGE}"))?)
        }
    };
    Ok(Publish { host_ip, host_port: port(spec, "host port", host)?, sandbox_port: port(spec, "sandbox port", sandbox)?, udp, spec: spec.to_string() })
}

/// Opens the host's listening sockets for each flag: HOST_IP, or 0.0.0.0 and
/// [::] (IPv6 only, so that the two do not clash; skipped on a host without
/// IPv6). A port in use fails the boot.
pub fn listen(published: &[Publish]) -> Result<Vec<rvisor_kernel::net::forward::Forward>, String> {
    let mut out = Vec::new();
    for p in published {
        let addrs: Vec<(IpAddr, bool)> = match p.host_ip {
            Some(ip) => vec![(ip, true)],
            None => vec![(Ipv4Addr::UNSPECIFIED.into(), true), (Ipv6Addr::UNSPECIFIED.into(), false)],
        };
        let mut fwd = rvisor_kernel::net::forward::Forward { listeners: Vec::new(), sandbox_port: p.sandbox_port, udp: p.udp, ipv6: Vec::new() };
        for (ip, required) in addrs {
            let addr = SocketAddr::new(ip, p.host_port);
            match listen_on(addr, p.udp) {
                Ok(fd) => {
                    fwd.listeners.push(fd);
                    fwd.ipv6.push(ip.is_ipv6());
                }
                Err(e) if !required && matches!(e.raw_os_error(), Some(libc::EAFNOSUPPORT | libc::EADDRNOTAVAIL)) => {
                    tracing::debug!("-p {}: no IPv6 listener ({e})", p.spec);
                }
                Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                    return Err(format!("-p {}: host port {addr} is already in use", p.spec));
                }
                Err(e) => return Err(format!("-p {}: cannot listen on {addr}: {e}", p.spec)),
            }
        }
        out.push(fwd);
    }
    Ok(out)
}

/// A non-blocking host TCP socket listening on `addr`, or a UDP one bound there.
fn listen_on(addr: SocketAddr, udp: bool) -> std::io::Result<OwnedFd> {
    use rvisor_platform::hostcall::socket as host;
    let domain = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = host::socket(domain, if udp { libc::SOCK_DGRAM } else { libc::SOCK_STREAM }, 0)?;
    let on = 1i32.to_ne_bytes();
    if !udp {
        // As Docker's proxy: a restarted sandbox gets its port back while old
        // connections linger in TIME_WAIT.
        host::set_option(fd.as_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, &on)?;
    }
    if addr.is_ipv6() {
        host::set_option(fd.as_fd(), libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &on)?;
    }
    host::bind(fd.as_fd(), &rvisor_kernel::net::inet::sockaddr(addr))?;
    if !udp {
        host::listen(fd.as_fd(), libc::SOMAXCONN)?;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(spec: &str) -> (Option<IpAddr>, u16, u16) {
        let p = parse(spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
        (p.host_ip, p.host_port, p.sandbox_port)
    }

    #[test]
    fn parses_docker_forms() {
        assert_eq!(ok("8080:80"), (None, 8080, 80));
        assert_eq!(ok("8080:80/tcp"), (None, 8080, 80));
        assert!(parse("8080:80/udp").unwrap().udp);
        assert!(!parse("8080:80").unwrap().udp);
        assert_eq!(ok("127.0.0.1:8080:80"), (Some(Ipv4Addr::LOCALHOST.into()), 8080, 80));
        assert_eq!(ok("[::1]:8080:80"), (Some(Ipv6Addr::LOCALHOST.into()), 8080, 80));
        assert_eq!(ok("::1:8080:80"), (Some(Ipv6Addr::LOCALHOST.into()), 8080, 80));
    }

    #[test]
    fn refuses_bad_values_with_a_reason() {
        for (spec, why) in [
            ("80", "want"),
            ("", "want"),
            ("8080:", "not a port"),
            ("x:80", "not a port"),
            ("0:80", "not a port"),
            ("8080:70000", "not a port"),
            ("8080:80/sctp", "unknown protocol"),
            ("nohost:8080:80", "not an IP address"),
        ] {
            let e = parse(spec).expect_err(spec);
            assert!(e.contains(why) && e.starts_with(&format!("-p {spec}:")), "{spec}: {e}");
        }
    }
}
