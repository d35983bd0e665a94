"""The daemon's state.json: typed, and the file an older shoald wrote still loads."""

from __future__ import annotations

import json
from pathlib import Path

from shoal.daemon.state import LocalState
from shoal.model.dispatch import ManagerAddr

# As a shoald that kept this state in a dict wrote it (json.dumps(state, indent=2)).
DICT_ERA = {
    "listen_ip": "10.9.0.2", "listen_port": 2377, "advertise_ip": "10.9.0.2",
    "managers": [{"NodeID": "n1", "Addr": "10.9.0.2:2377"}, {"NodeID": "", "Addr": "10.9.0.3:2377"}],
}


def test_a_dict_era_file_loads_and_is_written_back_the_same(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text(json.dumps(DICT_ERA, indent=2))
    state = LocalState.load(path)
    assert state.listen_port == 2377 and state.manager_addrs == ["10.9.0.2:2377", "10.9.0.3:2377"]
    assert state.managers[1] == ManagerAddr(addr="10.9.0.3:2377")
    assert json.loads(state.encode()) == DICT_ERA
    assert state.encode().decode() == json.dumps(DICT_ERA, indent=2)


def test_the_data_path_port_is_kept_when_not_the_default(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(LocalState(listen_ip="a", listen_port=1, advertise_ip="a", data_path_port=7789).encode())
    assert LocalState.load(path).data_path_port == 7789
    path.write_text(json.dumps(DICT_ERA))
    assert LocalState.load(path).data_path_port == 4789
