"""The log driver (json-file with max-size/max-file, none; the rest refused by name) and the
mount options the nodes honour or the control API refuses."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.errors import InvalidArgument
from shoal.model.logdriver import JSON_FILE, NONE, LogConfig, log_config, parse_size
from shoal.model.mountopts import check_mounts


def test_no_driver_is_the_nodes_json_file() -> None:
    assert log_config(None) == LogConfig(JSON_FILE)
    assert log_config({"Name": ""}).limits(10, 3) == (10, 3)


def test_json_file_options_override_the_nodes() -> None:
    cfg = log_config({"Name": "json-file", "Options": {"max-size": "1m", "max-file": "2"}})
    assert cfg == LogConfig(JSON_FILE, 1_000_000, 2)
    assert cfg.limits(10, 3) == (1_000_000, 2)
    only_size = log_config({"Name": "json-file", "Options": {"max-size": "10k"}})
    assert only_size.limits(5, 7) == (10_000, 7)  # the node's max-file is kept, as dockerd
    assert log_config({"Options": {"max-size": "-1"}}).limits(5, 7) == (0, 7)  # unlimited


def test_none_driver() -> None:
    assert log_config({"Name": "none"}).driver == NONE


@pytest.mark.parametrize(("text", "size"), [
    ("100", 100), ("10k", 10_000), ("10KB", 10_000), ("1.5m", 1_500_000), ("2g", 2 * 10**9),
    ("3 MiB", 3_000_000)])
def test_sizes_as_go_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(("driver", "message"), [
    ({"Name": "syslog"}, "log driver 'syslog' is not supported by Shoal"),
    ({"Name": "journald"}, "log driver 'journald' is not supported by Shoal"),
    ({"Name": "local"}, "log driver 'local' is not supported by Shoal"),
    ({"Name": "json-file", "Options": {"compress": "true"}},
     "log-opt 'compress' of the json-file log driver is not supported by Shoal"),
    ({"Name": "json-file", "Options": {"tag": "x"}}, "log-opt 'tag'"),
    ({"Name": "json-file", "Options": {"max-buffer": "1"}},
     "unknown log opt 'max-buffer' for json-file log driver"),
    ({"Name": "json-file", "Options": {"max-size": "big"}},
     "invalid log opt max-size: invalid size: 'big'"),
    ({"Name": "json-file", "Options": {"max-size": "0"}}, "max-size must be a positive number"),
    ({"Name": "json-file", "Options": {"max-file": "0"}}, "max-file cannot be less than 1"),
    ({"Name": "json-file", "Options": {"max-file": "two"}}, "invalid log opt max-file"),
    ({"Name": "none", "Options": {"max-size": "1m"}}, "unknown log opt 'max-size' for none"),
])
def test_refused(driver: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        log_config(driver)


def test_honoured_mounts_pass() -> None:
    check_mounts([
        {"Type": "bind", "Source": "/srv", "Target": "/a", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave", "NonRecursive": True,
                         "CreateMountpoint": True, "ReadOnlyForceRecursive": True}},
        {"Type": "volume", "Source": "data-{{.Task.Slot}}", "Target": "/b",
         "VolumeOptions": {"NoCopy": True, "Labels": {"com.docker.stack.namespace": "s"},
                           "Subpath": "sub/dir", "DriverConfig": {"Name": "local"}}},
        {"Type": "tmpfs", "Target": "/c",
         "TmpfsOptions": {"SizeBytes": 1024, "Mode": 0o700, "Options": [["noexec"],
                                                                       ["uid", "1000"]]}},
        {"Source": "anon", "Target": "/d", "Consistency": "cached"},
    ])
    check_mounts(None)


@pytest.mark.parametrize(("mount", "message"), [
    ({"Type": "npipe", "Source": "a", "Target": "b"}, "mount type 'npipe' is not supported"),
    ({"Type": "cluster", "Source": "a", "Target": "/b"}, "cluster \\(CSI\\) volumes"),
    ({"Type": "image", "Source": "alpine", "Target": "/b"}, "mount type 'image'"),
    ({"Type": "weird", "Target": "/b"}, "mount type unknown: 'weird'"),
    ({"Type": "volume", "Source": "v", "Target": "/b",
      "VolumeOptions": {"DriverConfig": {"Name": "nfs"}}}, "volume driver 'nfs' is not supported"),
    ({"Type": "volume", "Source": "v", "Target": "/b", "VolumeOptions": {"Subpath": "../x"}},
     "subpath must be a relative path within the volume"),
    ({"Type": "bind", "Source": "/a", "Target": "/b", "BindOptions": {"Propagation": "up"}},
     "invalid propagation mode 'up'"),
    ({"Type": "bind", "Source": "/a", "Target": "/b",
      "BindOptions": {"ReadOnlyForceRecursive": True}}, "need ReadOnly"),
    ({"Type": "tmpfs", "Target": "/b", "TmpfsOptions": {"Options": [["a", "b", "c"]]}},
     "TmpfsOptions.Options entries"),
])
def test_refused_mounts(mount: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        check_mounts([mount])


def test_duplicate_target_as_swarmkit() -> None:
    with pytest.raises(InvalidArgument, match="duplicated mount point: /x"):
        check_mounts([{"Type": "tmpfs", "Target": "/x"}, {"Type": "tmpfs", "Target": "/x"}])
