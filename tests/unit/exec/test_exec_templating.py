"""Templated secrets and configs (swarmkit's template package): the context a task's template
sees, the env/secret/config/join functions, and the errors that fail the task."""

from __future__ import annotations

from typing import Any

import pytest

from shoal.exec.templating import (
    NodeInfo,
    TemplateFailed,
    context,
    expand,
    expand_container_spec,
    expand_files,
)
from shoal.gotemplate import Template
from shoal.model.objects import Task
from shoal.model.references import FileRef, file_refs
from shoal.model.specs import TaskSpec

NODE = NodeInfo(hostname="host-a", os="linux", architecture="x86_64")


def make_task(*, slot: int = 2, **cs: Any) -> Task:
    spec: dict[str, Any] = {
        "Image": "busybox",
        "Env": ["X=one=1", "EMPTY=", "NOVALUE", "X=second"],
        "Secrets": [{"File": {"Name": "pw"}, "SecretID": "s1", "SecretName": "db_pw"},
                    {"File": {"Name": "/etc/key"}, "SecretID": "s2", "SecretName": "key"}],
        "Configs": [{"File": {"Name": "app.conf"}, "ConfigID": "c1", "ConfigName": "app"},
                    {"File": {"Name": "base.conf"}, "ConfigID": "c2", "ConfigName": "base"}],
        **cs,
    }
    return Task(id="tid1", service_id="svc1", service_name="web",
                service_labels={"tier": "front"}, slot=slot, node_id="node1",
                spec=TaskSpec(container_spec=spec))


def render(source: str, task: Task | None = None, *, node: NodeInfo = NODE,
           driver: str = "golang") -> str:
    task = task or make_task()
    refs = {r.id: r for r in file_refs(task)}
    raw = {refs["s1"]: b"hunter2", refs["s2"]: b"KEY", refs["c1"]: source.encode(),
           refs["c2"]: b"{{.Task.ID}} raw"}
    return expand(refs["c1"], driver, task, node, raw).decode()


def test_context_fields() -> None:
    assert render("{{.Service.ID}} {{.Service.Name}} {{.Service.Labels.tier}}") == "svc1 web front"
    assert render("{{.Node.ID}} {{.Node.Hostname}} {{.Node.Platform.OS}} "
                  "{{.Node.Platform.Architecture}}") == "node1 host-a linux x86_64"
    assert render("{{.Task.ID}} {{.Task.Name}} {{.Task.Slot}}") == "tid1 web.2.tid1 2"
    assert render("{{range $k, $v := .Service.Labels}}{{$k}}={{$v}}{{end}}") == "tier=front"
    assert render("{{.Node.Platform}} {{.Service}}") == "{x86_64 linux} {svc1 web map[tier:front]}"
    assert render("{{if eq .Task.Slot \"2\"}}first{{else}}other{{end}}") == "first"


def test_slot_falls_back_to_the_node_id_and_name_to_the_annotation() -> None:
    task = make_task(slot=0)
    assert render("{{.Task.Slot}} {{.Task.Name}}", task) == "node1 web.node1.tid1"
    task.name = "custom"
    assert render("{{.Task.Name}}", task) == "custom"


def test_env_secret_config_and_join() -> None:
    assert render('{{env "X"}}|{{env "EMPTY"}}|{{env "NOVALUE"}}|{{env "NOPE"}}') == "one=1|||"
    assert render('{{secret "pw"}} {{secret "/etc/key"}}') == "hunter2 KEY"
    # another config's data as stored: not expanded itself
    assert render('{{config "base.conf"}}') == "{{.Task.ID}} raw"
    assert render('{{join ", " "a" "b" .Service.Name}}') == "a, b, web"


def test_plain_data_is_left_alone() -> None:
    assert render("{{not a template", driver="") == "{{not a template"


@pytest.mark.parametrize(("source", "message"), [
    ('{{secret "db_pw"}}', "at <secret>: error calling secret: secret target db_pw not found"),
    ('{{config "app"}}', "error calling config: config target app not found"),
    ("{{.Service.Labels.nope}}",
     'executing "expansion" at <.Service.Labels.nope>: map has no entry for key "nope"'),
    ("{{.Task.Labels}}",
     "can't evaluate field Labels in type struct { ID string; Name string; Slot string }"),
    ("{{.Task.ID", "template: expansion:1: unclosed action"),
    ("{{json .}}", 'function "json" not defined'),
])
def test_errors_name_the_object(source: str, message: str) -> None:
    with pytest.raises(TemplateFailed) as err:
        render(source)
    assert str(err.value).startswith("failed to expand templated config c1: template: expansion:")
    assert message in str(err.value)


def test_unknown_driver() -> None:
    with pytest.raises(TemplateFailed, match="^failed to expand templated config c1: "
                                             "unrecognized template type$"):
        render("x", driver="jinja")


def test_expand_files_renders_only_the_templated() -> None:
    task = make_task(Configs=[])
    s1, s2 = (r for r in file_refs(task))
    raw = {s1: b"{{.Task.Slot}}", s2: b"{{.Task.Slot}}"}
    assert expand_files(raw, {s2: "golang"}, task, NODE) == {s1: b"{{.Task.Slot}}", s2: b"2"}


def test_local_node_info() -> None:
    node = NodeInfo.local("me")
    assert node.hostname == "me" and node.os == "linux" and node.architecture
    assert Template("{{.Node.Hostname}}").execute(context(make_task(), node)) == "me"


def test_refs_are_file_refs() -> None:
    assert [r.name for r in file_refs(make_task())] == ["pw", "/etc/key", "app.conf", "base.conf"]
    assert isinstance(file_refs(make_task())[0], FileRef)


def test_bytes_that_are_not_utf8_are_kept() -> None:
    task = make_task()
    refs = {r.id: r for r in file_refs(task)}
    raw = {refs["s1"]: b"\xff\xfe", refs["c1"]: b"\x80{{.Task.Slot}}{{secret \"pw\"}}"}
    assert expand(refs["c1"], "golang", task, NODE, raw) == b"\x802\xff\xfe"


# --- the ContainerSpec (swarmkit's ExpandContainerSpec) -----------------------------------------

def test_container_spec_hostname_env_and_mounts_expanded() -> None:
    cs = {"Image": "busybox", "Hostname": "{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}",
          "Env": ["SLOT={{.Task.Slot}}", "PLAIN=x", "BARE", "JOINED={{join \"-\" \"a\" \"b\"}}"],
          "Mounts": [{"Type": "volume", "Source": "data-{{.Task.Slot}}",
                      "Target": "/data/{{.Service.Name}}",
                      "VolumeOptions": {"Labels": {"node": "{{.Node.ID}}"}}},
                     {"Type": "tmpfs", "Target": "/t"}],
          "Args": ["{{.Task.Slot}}"]}
    task = make_task(slot=3, **cs)
    out = expand_container_spec(cs, task, NODE)
    assert out["Hostname"] == "web-3.host-a"
    assert out["Env"] == ["SLOT=3", "PLAIN=x", "BARE", "JOINED=a-b"]
    assert out["Mounts"][0]["Source"] == "data-3" and out["Mounts"][0]["Target"] == "/data/web"
    assert out["Mounts"][0]["VolumeOptions"]["Labels"] == {"node": "node1"}
    assert out["Args"] == ["{{.Task.Slot}}"]  # not a templated field, as swarmkit's
    assert cs["Hostname"].startswith("{{")  # the task's own spec is left alone
    global_task = make_task(slot=0, **cs)
    assert expand_container_spec(cs, global_task, NODE)["Hostname"] == "web-node1.host-a"


@pytest.mark.parametrize(("cs", "message"), [
    ({"Hostname": "{{.Task.Nope}}"}, "expanding hostname failed: template: expansion:1:"),
    ({"Env": ["A={{.Bad"]}, "expanding env failed: expanding env 'A={{.Bad':"),
    ({"Mounts": [{"Type": "volume", "Source": "{{env \"X\"}}", "Target": "/x"}]},
     "expanding mounts failed: expanding mount source"),
])
def test_container_spec_template_errors(cs: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateFailed, match=message.replace("{", r"\{").replace("(", r"\(")):
        expand_container_spec(cs, make_task(**cs), NODE)
