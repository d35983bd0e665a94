"""Request bodies are refused where Docker's Go types refuse them, with dockerd's words."""

from __future__ import annotations

import pytest

from shoal.errors import InvalidArgument
from shoal.model.codec import decode
from shoal.model.requests import InitRequest
from shoal.model.specs import ClusterSpec, ServiceSpec

_GO = "invalid JSON: json: cannot unmarshal "


@pytest.mark.parametrize(("type_", "body", "message"), [
    (ServiceSpec, '{"TaskTemplate": {"ForceUpdate": 18446744073709551616}}',
     "number 18446744073709551616 into Go struct field TaskSpec.TaskTemplate.ForceUpdate of type uint64"),
    (ServiceSpec, '{"Mode": {"Replicated": {"Replicas": -1}}}',
     "number -1 into Go struct field ReplicatedService.Mode.Replicated.Replicas of type uint64"),
    (ServiceSpec, '{"TaskTemplate": {"ContainerSpec": {"Image": false}}}',
     "bool into Go struct field ContainerSpec.TaskTemplate.ContainerSpec.Image of type string"),
    (ServiceSpec, '{"TaskTemplate": {"ContainerSpec": {"Image": 0}}}',
     "number into Go struct field ContainerSpec.TaskTemplate.ContainerSpec.Image of type string"),
    (ServiceSpec, '{"TaskTemplate": {"ContainerSpec": {"Healthcheck": {"Retries": "3"}}}}',
     "string into Go struct field HealthcheckConfig.TaskTemplate.ContainerSpec.Healthcheck.Retries of type int"),
    (ServiceSpec, '{"TaskTemplate": {"ContainerSpec": {"Mounts": [{"TmpfsOptions": {"Mode": -1}}]}}}',
     "number -1 into Go struct field TmpfsOptions.TaskTemplate.ContainerSpec.Mounts.TmpfsOptions.Mode of type fs.FileMode"),
    (ServiceSpec, '{"EndpointSpec": {"Ports": [{"TargetPort": 4294967296}]}}',
     "number 4294967296 into Go struct field PortConfig.EndpointSpec.Ports.TargetPort of type uint32"),
    (ServiceSpec, '{"UpdateConfig": {"Delay": 1.5}}',
     "number 1.5 into Go struct field UpdateConfig.UpdateConfig.Delay of type time.Duration"),
    (ServiceSpec, '{"Labels": {"a": 1}}', "number into Go struct field ServiceSpec.Labels of type string"),
    (ServiceSpec, '{"Mode": {"Global": 3}}',
     "number into Go struct field ServiceMode.Mode.Global of type swarm.GlobalService"),
    (ServiceSpec, "[]", "array into Go value of type swarm.ServiceSpec"),
    (ClusterSpec, '{"Orchestration": {"TaskHistoryRetentionLimit": 9223372036854775808}}',
     ("number 9223372036854775808 into Go struct field OrchestrationConfig.Orchestration.TaskHistoryRetentionLimit "
      "of type int64")),
    (ClusterSpec, '{"CAConfig": {"NodeCertExpiry": 9223372036854775808}}',
     "number 9223372036854775808 into Go struct field CAConfig.CAConfig.NodeCertExpiry of type time.Duration"),
    (ClusterSpec, '{"TaskDefaults": {"LogDriver": "AAA"}}',
     "string into Go struct field TaskDefaults.TaskDefaults.LogDriver of type swarm.Driver"),
    (ClusterSpec, '{"CAConfig": {"ExternalCAs": [{"URL": 5}]}}',
     "number into Go struct field ExternalCA.CAConfig.ExternalCAs.URL of type string"),
    (ClusterSpec, '{"CAConfig": {"ExternalCAs": {}}}',
     "object into Go struct field CAConfig.CAConfig.ExternalCAs of type []swarm.ExternalCA"),
    (InitRequest, '{"SubnetSize": 4294967296}',
     "number 4294967296 into Go struct field InitRequest.SubnetSize of type uint32"),
])
def test_values_docker_types_refuse_are_refused_with_gos_words(type_: type, body: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        decode(body.encode(), type_)
    assert str(refused.value) == _GO + message


def test_what_go_takes_is_still_taken() -> None:
    spec = decode(b'{"mode": {"replicated": {"Replicas": 18446744073709551615}}, "TaskTemplate": '
                  b'{"containerspec": {"image": "x", "command": null, "StopGracePeriod": -1}}, '
                  b'"UpdateConfig": {"MaxFailureRatio": 0.5}}', ServiceSpec)
    assert spec.mode.replicated is not None and spec.mode.replicated.replicas == 2**64 - 1
    assert spec.task_template.container_spec == {"Image": "x", "StopGracePeriod": -1}
    cluster = decode(b'{"TaskDefaults": {"LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}}}}',
                     ClusterSpec)
    assert cluster.task_defaults == {"LogDriver": {"Name": "json-file", "Options": {"max-size": "1m"}}}
