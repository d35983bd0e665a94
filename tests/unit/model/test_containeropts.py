"""The ContainerSpec's options read into one value, and what no container could get refused
naming the field (issue 15: no option stored and then ignored)."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.model.containeropts import (
    RLIMIT_INFINITY,
    ContainerOptions,
    DNSConfig,
    HostEntry,
    Ulimit,
    container_options,
)


def test_nothing_asked_is_the_defaults() -> None:
    assert container_options({"Image": "x"}) == ContainerOptions()
    assert container_options({"DNSConfig": {}, "Init": None, "Isolation": "default"}) == \
        ContainerOptions(dns=DNSConfig())


def test_every_option_read() -> None:
    opts = container_options({
        "DNSConfig": {"Nameservers": ["1.1.1.1", "fd00::1"], "Search": ["example.com", "."],
                      "Options": ["ndots:2", "timeout:1"]},
        "Hosts": ["10.0.0.9 db db.local", "::1 six"], "Groups": ["staff", "100"],
        "Init": True, "TTY": True, "OpenStdin": True, "OomScoreAdj": 500,
        "Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                    {"Name": "core", "Soft": -1, "Hard": -1}],
        "Sysctls": {"net.ipv4.ip_forward": "1", "kernel.shmmax": "65536",
                    "fs.mqueue.msg_max": "20", "kernel.domainname": "example"},
        "Isolation": "",
    })
    assert opts.dns == DNSConfig(("1.1.1.1", "fd00::1"), ("example.com", "."),
                                 ("ndots:2", "timeout:1"))
    assert opts.hosts == (HostEntry("10.0.0.9", ("db", "db.local")), HostEntry("::1", ("six",)))
    assert opts.groups == ("staff", "100")
    assert opts.init and opts.tty and opts.open_stdin and opts.oom_score_adj == 500
    assert opts.ulimits == (Ulimit("nofile", 1024, 2048), Ulimit("core", -1, -1))
    assert opts.ulimits[0].rlimit == {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}
    assert opts.ulimits[1].rlimit["hard"] == RLIMIT_INFINITY
    assert len(opts.sysctls) == 4


@pytest.mark.parametrize(("spec", "message"), [
    ({"DNSConfig": {"Nameservers": ["dns.example"]}},
     "invalid DNSConfig.Nameservers entry 'dns.example': IP address is not correctly formatted"),
    ({"DNSConfig": {"Search": ["-bad-.com"]}},
     "invalid DNSConfig.Search entry: -bad-.com is not a valid domain"),
    ({"DNSConfig": {"Options": ["ndots 2"]}}, "invalid DNSConfig.Options entry 'ndots 2'"),
    ({"DNSConfig": ["1.1.1.1"]}, "DNSConfig must be an object"),
    ({"Hosts": ["db"]}, "invalid Hosts entry 'db': want \"IP_address canonical_hostname"),
    ({"Hosts": ["db.local 10.0.0.1"]}, "invalid Hosts entry address 'db.local'"),
    ({"Hosts": ["host-gateway gw"]}, "host-gateway is not supported by Shoal"),
    ({"Groups": [""]}, "invalid Groups entry"),
    ({"Groups": "staff"}, "Groups must be a list of strings"),
    ({"Init": "yes"}, "Init must be a boolean"),
    ({"TTY": 1}, "TTY must be a boolean"),
    ({"OpenStdin": "true"}, "OpenStdin must be a boolean"),
    ({"OomScoreAdj": 1001}, r"Invalid value 1001, range for oom score adj is \[-1000, 1000\]"),
    ({"OomScoreAdj": -1001}, "range for oom score adj"),
    ({"Ulimits": [{"Name": "files", "Soft": 1, "Hard": 1}]},
     "invalid Ulimits entry: invalid ulimit type: files"),
    ({"Ulimits": [{"Name": "nofile", "Soft": 10, "Hard": 5}]},
     "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
    ({"Ulimits": [{"Name": "nofile", "Soft": -5, "Hard": 5}]}, "invalid ulimit argument"),
    ({"Sysctls": {"vm.swappiness": "10"}},
     "invalid Sysctls: sysctl \"vm.swappiness\" is not in a separate kernel namespace"),
    ({"Sysctls": {"kernel.hostname": "x"}}, "conflicts with the OCI \"hostname\" field"),
    ({"Sysctls": {"net.core.somaxconn": 1024}}, "Sysctls must be an object of strings"),
    ({"Isolation": "hyperv"}, "Invalid isolation: 'hyperv' - linux only supports 'default'"),
])
def test_refused_naming_the_field(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        container_options(spec)


def test_the_last_ulimit_of_a_name_wins() -> None:
    opts = container_options({"Ulimits": [{"Name": "nproc", "Soft": 1, "Hard": 2},
                                          {"Name": "nproc", "Soft": 3, "Hard": 4}]})
    assert opts.ulimits == (Ulimit("nproc", 3, 4),)
