"""A container's /etc/hosts, /etc/hostname and /etc/resolv.conf, written into its directory
and bind-mounted over the image's (called by the controller at prepare).

/etc/hosts: localhost, then the service's ``Hosts`` (``--host name:ip``), then the container's
own addresses under its hostname (Docker's order). /etc/resolv.conf, as dockerd writes it:

* on networks: the embedded DNS server, ``nameserver 127.0.0.11``, which answers service and
  task names and forwards the rest to ``DNSConfig.Nameservers`` (``--dns``), else to the node's
  resolvers; the search domains and options are the service's (``--dns-search``,
  ``--dns-option``), else the node's search domains; ``ndots:0`` unless an option sets ndots;
* loopback only: the node's resolv.conf, its nameserver, search and options lines replaced by
  the service's where it gives them.
"""

from __future__ import annotations

from pathlib import Path

from shoal.model.containeropts import DNSConfig, HostEntry

__all__ = ["EMBEDDED_DNS", "resolv_conf", "write_host_files"]

EMBEDDED_DNS = "127.0.0.11"
HOST_RESOLV_CONF = Path("/etc/resolv.conf")


def _lines(text: str, keyword: str) -> list[str]:
    return [line for line in text.splitlines() if line.split()[:1] == [keyword]]


def _values(lines: list[str]) -> list[str]:
    return [v for line in lines for v in line.split()[1:]]


def resolv_conf(host: str, dns: DNSConfig | None, *, embedded: bool) -> str:
    """The container's resolv.conf from the node's (``host``) and the service's DNSConfig."""
    dns = dns or DNSConfig()
    search = list(dns.search) or _values(_lines(host, "search")[-1:])  # glibc: the last line
    if search == ["."]:  # Docker's way of saying "no search domains"
        search = []
    options = list(dns.options) or ([] if embedded else _values(_lines(host, "options")))
    if embedded:
        if not any(o.startswith("ndots:") for o in options):
            options.insert(0, "ndots:0")
        external = list(dns.nameservers) or _values(_lines(host, "nameserver"))
        out = [f"nameserver {EMBEDDED_DNS}"]
        out += [f"search {' '.join(search)}"] if search else []
        out += [f"options {' '.join(options)}"] if options else []
        return "\n".join([*out, "", f"# ExtServers: [{' '.join(external)}]"]) + "\n"
    if dns == DNSConfig():
        return host
    kept = [line for line in host.splitlines()
            if line.split()[:1] not in (["nameserver"], ["search"], ["options"])]
    servers = list(dns.nameservers) or _values(_lines(host, "nameserver"))
    out = [*kept, *(f"nameserver {s}" for s in servers)]
    out += [f"search {' '.join(search)}"] if search else []
    out += [f"options {' '.join(options)}"] if options else []
    return "\n".join(out) + "\n"


def write_host_files(directory: Path, hostname: str, *, addresses: list[str] | None = None,
                     dns: DNSConfig | None = None,
                     hosts: tuple[HostEntry, ...] = ()) -> dict[str, str]:
    """/etc/hosts, /etc/hostname and /etc/resolv.conf for the container (destination: file).

    ``addresses`` (the container's overlay addresses, "10.0.1.5/24"), when given, name the
    hostname in /etc/hosts and make the embedded DNS the resolver."""
    files = {"/etc/hosts": directory / "hosts", "/etc/hostname": directory / "hostname",
             "/etc/resolv.conf": directory / "resolv.conf"}
    own = [a.split("/")[0] for a in addresses or []]
    extra = "".join(f"{h.ip}\t{' '.join(h.names)}\n" for h in hosts)
    mine = "".join(f"{ip}\t{hostname}\n" for ip in own) or f"127.0.1.1\t{hostname}\n"
    files["/etc/hosts"].write_text(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" + extra + mine)
    files["/etc/hostname"].write_text(hostname + "\n")
    try:
        host = HOST_RESOLV_CONF.read_text()
    except OSError:
        host = ""
    files["/etc/resolv.conf"].write_text(resolv_conf(host, dns, embedded=addresses is not None))
    return {dest: str(path) for dest, path in files.items()}
