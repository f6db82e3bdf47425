//! Which `Host` headers name this server (against DNS rebinding, a request for any other
//! name is refused), and the addresses `serve` prints.
//!
//! On loopback: `localhost`, `127.0.0.1` and `[::1]` with the port. With `--allow-remote`
//! on a wildcard address (`0.0.0.0`, `[::]`): also every address of the machine's network
//! interfaces and its host name; on one address: that address. `--allow-host NAME` adds a
//! name (a reverse proxy's), matched as given or with the port.

use std::net::{IpAddr, SocketAddr};

/// The Host values a server on `addr` answers to.
#[derive(Debug, Clone)]
pub(super) struct Hosts {
    /// Lower-case `host:port` (or a `--allow-host` value as given).
    allowed: Vec<String>,
    /// Addresses for the printed URLs, most useful first.
    urls: Vec<String>,
}

/// `ip` as it appears in a Host header (IPv6 in brackets).
fn host_form(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The machine's interface addresses (loopback last), for a wildcard listener of `family`.
fn interface_addresses(v6: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .map(|i| i.ip())
        // An IPv6 wildcard usually accepts IPv4 too (dual stack); an IPv4 one only IPv4.
        .filter(|ip| v6 || ip.is_ipv4())
        .collect();
    ips.sort_by_key(|ip| (ip.is_loopback(), ip.is_ipv6()));
    ips.dedup();
    ips
}

impl Hosts {
    /// The names for a server on `addr`; `remote` as `--allow-remote`, `extra` as
    /// `--allow-host`.
    pub(super) fn new(addr: SocketAddr, remote: bool, extra: &[String]) -> Hosts {
        let port = addr.port();
        let mut names: Vec<String> = ["localhost", "127.0.0.1", "[::1]"].map(String::from).to_vec();
        let mut urls = Vec::new();
        if remote {
            let ip = addr.ip();
            let ips = if ip.is_unspecified() { interface_addresses(ip.is_ipv6()) } else { vec![ip] };
            for ip in ips {
                names.push(host_form(ip));
                if !ip.is_loopback() {
                    urls.push(host_form(ip));
                }
            }
            if ip.is_unspecified() {
                if let Ok(name) = gethostname::gethostname().into_string() {
                    names.push(name.to_ascii_lowercase());
                }
            }
        }
        match addr.ip() {
            ip if ip.is_loopback() => urls = vec![host_form(ip)],
            IpAddr::V4(ip) if ip.is_unspecified() => urls.push("127.0.0.1".into()),
            IpAddr::V6(ip) if ip.is_unspecified() => urls.push("[::1]".into()),
            _ => {}
        }
        let mut allowed: Vec<String> = names.iter().map(|n| format!("{n}:{port}")).collect();
        for e in extra {
            let e = e.to_ascii_lowercase();
            allowed.push(format!("{e}:{port}"));
            allowed.push(e);
        }
        allowed.sort();
        allowed.dedup();
        let urls = urls.into_iter().map(|h| format!("http://{h}:{port}/")).collect();
        Hosts { allowed, urls }
    }

    /// Whether a Host header (or a request target's authority) names this server.
    pub(super) fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed.binary_search(&host).is_ok()
    }

    /// The server's base URLs (`http://host:port/`), most useful first.
    pub(super) fn urls(&self) -> &[String] {
        &self.urls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_answers_to_its_names_with_its_port_only() {
        let h = Hosts::new("127.0.0.1:8580".parse().unwrap(), false, &[]);
        for ok in ["localhost:8580", "LOCALHOST:8580", "127.0.0.1:8580", "[::1]:8580"] {
            assert!(h.allows(ok), "{ok}");
        }
        for no in ["localhost", "127.0.0.1:8581", "evil.example:8580", "0.0.0.0:8580", ""] {
            assert!(!h.allows(no), "{no}");
        }
        assert_eq!(h.urls(), ["http://127.0.0.1:8580/"]);
    }

    #[test]
    fn a_wildcard_answers_to_the_machines_addresses_and_the_proxy_names() {
        let h = Hosts::new("0.0.0.0:9000".parse().unwrap(), true, &["Gigas.Example".into()]);
        for ip in interface_addresses(false) {
            assert!(h.allows(&format!("{}:9000", host_form(ip))), "{ip}");
        }
        let name = gethostname::gethostname().into_string().unwrap().to_ascii_lowercase();
        assert!(h.allows(&format!("{name}:9000")), "{name}");
        assert!(h.allows("gigas.example") && h.allows("gigas.example:9000"));
        assert!(!h.allows("0.0.0.0:9000") && !h.allows("other.example:9000"));
        assert!(h.urls().iter().all(|u| !u.contains("0.0.0.0")), "{:?}", h.urls());
        let one = Hosts::new("10.1.2.3:9000".parse().unwrap(), true, &[]);
        assert!(one.allows("10.1.2.3:9000") && !one.allows("10.1.2.4:9000"));
        assert_eq!(one.urls(), ["http://10.1.2.3:9000/"]);
    }
}
