//! Contents of a container's `/etc/resolv.conf`, `/etc/hosts` and
//! `/etc/hostname`, following Docker's rules.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

/// Docker's fallback resolvers when the host has only loopback ones.
pub const DEFAULT_NAMESERVERS: [Ipv4Addr; 2] =
    [Ipv4Addr::new(8, 8, 8, 8), Ipv4Addr::new(8, 8, 4, 4)];

/// The address of the embedded DNS server on user-defined networks.
pub const EMBEDDED_DNS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Which resolv.conf a container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsMode {
    /// Default bridge: the host's resolvers minus loopback ones (which are
    /// unreachable from the container), or 8.8.8.8/8.8.4.4 if none remain.
    Host,
    /// User-defined network: the embedded server at 127.0.0.11, which
    /// forwards to the host's resolvers.
    Embedded,
}

/// `--dns`, `--dns-search`, `--dns-option` overrides.
#[derive(Debug, Clone, Default)]
pub struct DnsOverrides {
    /// Replaces the nameservers.
    pub servers: Vec<IpAddr>,
    /// Replaces the search domains.
    pub search: Vec<String>,
    /// Replaces the options.
    pub options: Vec<String>,
}

/// The parts of a resolv.conf that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResolvConf {
    /// `nameserver` lines.
    pub nameservers: Vec<IpAddr>,
    /// `search` (or `domain`) domains.
    pub search: Vec<String>,
    /// `options` entries.
    pub options: Vec<String>,
}

impl ResolvConf {
    /// Parses resolv.conf text; unknown lines and bad addresses are skipped.
    pub fn parse(text: &str) -> Self {
        let mut conf = Self::default();
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    // A zone suffix (fe80::1%eth0) is kept out of the parse.
                    if let Some(Ok(ip)) = words
                        .next()
                        .map(|w| w.split('%').next().unwrap_or(w).parse())
                    {
                        conf.nameservers.push(ip);
                    }
                }
                Some("search" | "domain") => conf.search = words.map(str::to_owned).collect(),
                Some("options") => conf.options.extend(words.map(str::to_owned)),
                _ => {}
            }
        }
        conf
    }

    /// Renders the file.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ns in &self.nameservers {
            let _ = writeln!(out, "nameserver {ns}");
        }
        if !self.search.is_empty() {
            let _ = writeln!(out, "search {}", self.search.join(" "));
        }
        if !self.options.is_empty() {
            let _ = writeln!(out, "options {}", self.options.join(" "));
        }
        out
    }
}

/// The host resolv.conf to start from: `/etc/resolv.conf`, unless it only
/// points at systemd-resolved's stub (127.0.0.53), then the real upstream
/// list in `/run/systemd/resolve/resolv.conf` (as Docker does).
pub fn host_resolv_conf_path() -> PathBuf {
    let etc = Path::new("/etc/resolv.conf");
    let upstream = Path::new("/run/systemd/resolve/resolv.conf");
    let stub_only = std::fs::read_to_string(etc).is_ok_and(|t| {
        let conf = ResolvConf::parse(&t);
        !conf.nameservers.is_empty()
            && conf
                .nameservers
                .iter()
                .all(|n| *n == IpAddr::V4(Ipv4Addr::new(127, 0, 0, 53)))
    });
    if stub_only && upstream.exists() {
        upstream.to_owned()
    } else {
        etc.to_owned()
    }
}

/// The container's resolv.conf from the host's text. IPv6 resolvers are
/// dropped since berth networks are IPv4 only.
pub fn container_resolv_conf(host: &str, mode: DnsMode, overrides: &DnsOverrides) -> String {
    let host = ResolvConf::parse(host);
    let mut conf = ResolvConf {
        nameservers: Vec::new(),
        search: if overrides.search.is_empty() {
            host.search.clone()
        } else {
            overrides.search.clone()
        },
        options: if overrides.options.is_empty() {
            host.options.clone()
        } else {
            overrides.options.clone()
        },
    };
    match mode {
        DnsMode::Embedded => {
            // The embedded server forwards to the overrides or the host's list.
            conf.nameservers.push(IpAddr::V4(EMBEDDED_DNS));
            if !conf.options.iter().any(|o| o.starts_with("ndots:")) {
                conf.options.push("ndots:0".to_owned());
            }
        }
        DnsMode::Host if !overrides.servers.is_empty() => {
            conf.nameservers = overrides.servers.clone()
        }
        DnsMode::Host => {
            conf.nameservers = host
                .nameservers
                .into_iter()
                .filter(|n| n.is_ipv4() && !n.is_loopback())
                .collect();
            if conf.nameservers.is_empty() {
                conf.nameservers = DEFAULT_NAMESERVERS.iter().map(|a| IpAddr::V4(*a)).collect();
            }
        }
    }
    conf.render()
}

/// The container's /etc/hosts: Docker's loopback and IPv6 lines, the
/// container's own address with its hostname (and aliases), then
/// `--add-host` entries.
pub fn hosts_file(
    address: Option<Ipv4Addr>,
    hostname: &str,
    aliases: &[String],
    extra: &[(String, IpAddr)],
) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\n\
         ff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for (name, ip) in extra {
        let _ = writeln!(out, "{ip}\t{name}");
    }
    if let Some(address) = address {
        let mut names = vec![hostname.to_owned()];
        names.extend(aliases.iter().filter(|a| a.as_str() != hostname).cloned());
        let _ = writeln!(out, "{address}\t{}", names.join(" "));
    }
    out
}

/// The container's /etc/hostname.
pub fn hostname_file(hostname: &str) -> String {
    format!("{hostname}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_only_host_gets_google_dns() {
        let host = "# generated\nnameserver 127.0.0.53\nnameserver ::1\nsearch corp.example\noptions edns0\n";
        let out = container_resolv_conf(host, DnsMode::Host, &DnsOverrides::default());
        assert_eq!(
            out,
            "nameserver 8.8.8.8\nnameserver 8.8.4.4\nsearch corp.example\noptions edns0\n"
        );
    }

    #[test]
    fn host_resolvers_kept_minus_loopback() {
        let host = "nameserver 127.0.0.1\nnameserver 10.0.0.2\nnameserver fe80::1%eth0\n";
        let out = container_resolv_conf(host, DnsMode::Host, &DnsOverrides::default());
        assert_eq!(out, "nameserver 10.0.0.2\n");
        let overrides = DnsOverrides {
            servers: vec!["1.1.1.1".parse().unwrap()],
            ..Default::default()
        };
        assert_eq!(
            container_resolv_conf(host, DnsMode::Host, &overrides),
            "nameserver 1.1.1.1\n"
        );
    }

    #[test]
    fn embedded_dns_for_user_networks() {
        let out = container_resolv_conf(
            "nameserver 10.0.0.2\nsearch a b\n",
            DnsMode::Embedded,
            &DnsOverrides::default(),
        );
        assert_eq!(out, "nameserver 127.0.0.11\nsearch a b\noptions ndots:0\n");
    }

    #[test]
    fn hosts_and_hostname() {
        let extra = vec![("db".to_owned(), "10.1.1.1".parse().unwrap())];
        let out = hosts_file(
            Some(Ipv4Addr::new(172, 17, 0, 2)),
            "abc123",
            &["web".to_owned()],
            &extra,
        );
        assert!(out.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(
            out.ends_with("10.1.1.1\tdb\n172.17.0.2\tabc123 web\n"),
            "{out}"
        );
        assert_eq!(hostname_file("abc123"), "abc123\n");
    }
}
