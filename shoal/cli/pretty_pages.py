"""The ``inspect --pretty`` page templates, verbatim from docker's formatters (tabs are
significant; the pages are rendered by `shoal.cli.templates` over the contexts in
`shoal.cli.node_format` and `shoal.cli.service_pretty`)."""

from __future__ import annotations

__all__ = ["NODE_PRETTY", "SERVICE_PRETTY"]

NODE_PRETTY = """ID:\t\t\t{{.ID}}
{{- if .Name }}
Name:\t\t\t{{.Name}}
{{- end }}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Hostname:              \t{{.Hostname}}
Joined at:             \t{{.CreatedAt}}
Status:
 State:\t\t\t{{.StatusState}}
 {{- if .HasStatusMessage}}
 Message:              \t{{.StatusMessage}}
 {{- end}}
 Availability:         \t{{.SpecAvailability}}
 {{- if .Status.Addr}}
 Address:\t\t{{.StatusAddr}}
 {{- end}}
{{- if .HasManagerStatus}}
Manager Status:
 Address:\t\t{{.ManagerStatusAddr}}
 Raft Status:\t\t{{.ManagerStatusReachability}}
 {{- if .IsManagerStatusLeader}}
 Leader:\t\tYes
 {{- else}}
 Leader:\t\tNo
 {{- end}}
{{- end}}
Platform:
 Operating System:\t{{.PlatformOS}}
 Architecture:\t\t{{.PlatformArchitecture}}
Resources:
 CPUs:\t\t\t{{.ResourceNanoCPUs}}
 Memory:\t\t{{.ResourceMemory}}
{{- if .HasEnginePlugins}}
Plugins:
{{- range $k, $v := .EnginePlugins }}
 {{ $k }}:{{if $v }}\t\t{{ $v }}{{ end }}
{{- end }}
{{- end }}
Engine Version:\t\t{{.EngineVersion}}
{{- if .EngineLabels}}
Engine Labels:
{{- range $k, $v := .EngineLabels }}
 - {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{- end }}
{{- if .HasTLSInfo}}
TLS Info:
 TrustRoot:
{{.TLSInfoTrustRoot}}
 Issuer Subject:\t{{.TLSInfoCertIssuerSubject}}
 Issuer Public Key:\t{{.TLSInfoCertIssuerPublicKey}}
{{- end}}"""

SERVICE_PRETTY = """
ID:\t\t{{.ID}}
Name:\t\t{{.Name}}
{{- if .Labels }}
Labels:
{{- range $k, $v := .Labels }}
 {{ $k }}{{if $v }}={{ $v }}{{ end }}
{{- end }}{{ end }}
Service Mode:
{{- if .IsModeGlobal }}\tGlobal
{{- else if .IsModeReplicated }}\tReplicated
{{- if .ModeReplicatedReplicas }}
 Replicas:\t{{ .ModeReplicatedReplicas }}
{{- end }}{{ end }}
{{- if .HasUpdateStatus }}
UpdateStatus:
 State:\t\t{{ .UpdateStatusState }}
{{- if .HasUpdateStatusStarted }}
 Started:\t{{ .UpdateStatusStarted }}
{{- end }}
{{- if .UpdateIsCompleted }}
 Completed:\t{{ .UpdateStatusCompleted }}
{{- end }}
 Message:\t{{ .UpdateStatusMessage }}
{{- end }}
Placement:
{{- if .TaskPlacementConstraints }}
 Constraints:\t{{ .TaskPlacementConstraints }}
{{- end }}
{{- if .TaskPlacementPreferences }}
 Preferences:   {{ .TaskPlacementPreferences }}
{{- end }}
{{- if .MaxReplicas }}
 Max Replicas Per Node:   {{ .MaxReplicas }}
{{- end }}
{{- if .HasUpdateConfig }}
UpdateConfig:
 Parallelism:\t{{ .UpdateParallelism }}
{{- if .HasUpdateDelay}}
 Delay:\t\t{{ .UpdateDelay }}
{{- end }}
 On failure:\t{{ .UpdateOnFailure }}
{{- if .HasUpdateMonitor}}
 Monitoring Period: {{ .UpdateMonitor }}
{{- end }}
 Max failure ratio: {{ .UpdateMaxFailureRatio }}
 Update order:      {{ .UpdateOrder }}
{{- end }}
{{- if .HasRollbackConfig }}
RollbackConfig:
 Parallelism:\t{{ .RollbackParallelism }}
{{- if .HasRollbackDelay}}
 Delay:\t\t{{ .RollbackDelay }}
{{- end }}
 On failure:\t{{ .RollbackOnFailure }}
{{- if .HasRollbackMonitor}}
 Monitoring Period: {{ .RollbackMonitor }}
{{- end }}
 Max failure ratio: {{ .RollbackMaxFailureRatio }}
 Rollback order:    {{ .RollbackOrder }}
{{- end }}
ContainerSpec:
 Image:\t\t{{ .ContainerImage }}
{{- if .ContainerArgs }}
 Args:\t\t{{ range $arg := .ContainerArgs }}{{ $arg }} {{ end }}
{{- end -}}
{{- if .ContainerEnv }}
 Env:\t\t{{ range $env := .ContainerEnv }}{{ $env }} {{ end }}
{{- end -}}
{{- if .ContainerWorkDir }}
 Dir:\t\t{{ .ContainerWorkDir }}
{{- end -}}
{{- if .HasContainerInit }}
 Init:\t\t{{ .ContainerInit }}
{{- end -}}
{{- if .ContainerUser }}
 User: {{ .ContainerUser }}
{{- end }}
{{- if .HasCapabilities }}
Capabilities:
{{- if .HasCapabilityAdd }}
 Add: {{ .CapabilityAdd }}
{{- end }}
{{- if .HasCapabilityDrop }}
 Drop: {{ .CapabilityDrop }}
{{- end }}
{{- end }}
{{- if .ContainerSysCtls }}
SysCtls:
{{- range $k, $v := .ContainerSysCtls }}
 {{ $k }}{{if $v }}: {{ $v }}{{ end }}
{{- end }}{{ end }}
{{- if .ContainerMounts }}
Mounts:
{{- end }}
{{- range $mount := .ContainerMounts }}
 Target:\t{{ $mount.Target }}
  Source:\t{{ $mount.Source }}
  ReadOnly:\t{{ $mount.ReadOnly }}
  Type:\t\t{{ $mount.Type }}
{{- end -}}
{{- if .Configs}}
Configs:
{{- range $config := .Configs }}
 Target:\t{{$config.File.Name}}
  Source:\t{{$config.ConfigName}}
{{- end }}{{ end }}
{{- if .Secrets }}
Secrets:
{{- range $secret := .Secrets }}
 Target:\t{{$secret.File.Name}}
  Source:\t{{$secret.SecretName}}
{{- end }}{{ end }}
{{- if .HasLogDriver }}
Log Driver:
{{- if .HasLogDriverName }}
 Name:\t\t{{ .LogDriverName }}
{{- end }}
{{- if .LogOpts }}
 LogOpts:
{{- range $k, $v := .LogOpts }}
  {{ $k }}{{if $v }}:       {{ $v }}{{ end }}
{{- end }}{{ end }}
{{ end }}
{{- if .HasResources }}
Resources:
{{- if .HasResourceReservations }}
 Reservations:
{{- if gt .ResourceReservationNanoCPUs 0.0 }}
  CPU:\t\t{{ .ResourceReservationNanoCPUs }}
{{- end }}
{{- if .ResourceReservationMemory }}
  Memory:\t{{ .ResourceReservationMemory }}
{{- end }}{{ end }}
{{- if .HasResourceLimits }}
 Limits:
{{- if gt .ResourceLimitsNanoCPUs 0.0 }}
  CPU:\t\t{{ .ResourceLimitsNanoCPUs }}
{{- end }}
{{- if .ResourceLimitMemory }}
  Memory:\t{{ .ResourceLimitMemory }}
{{- end }}{{ end }}{{ end }}
{{- if gt .ResourceLimitPids 0 }}
  PIDs:\t\t{{ .ResourceLimitPids }}
{{- end }}
{{- if .Networks }}
Networks:
{{- range $network := .Networks }} {{ $network }}{{ end }} {{ end }}
Endpoint Mode:\t{{ .EndpointMode }}
{{- if .Ports }}
Ports:
{{- range $port := .Ports }}
 PublishedPort = {{ $port.PublishedPort }}
  Protocol = {{ $port.Protocol }}
  TargetPort = {{ $port.TargetPort }}
  PublishMode = {{ $port.PublishMode }}
{{- end }} {{ end -}}
{{- if .Healthcheck }}
 Healthcheck:
  Interval = {{ .Healthcheck.Interval }}
  Retries = {{ .Healthcheck.Retries }}
  StartPeriod =\t{{ .Healthcheck.StartPeriod }}
  Timeout =\t{{ .Healthcheck.Timeout }}
  {{- if .Healthcheck.Test }}
  Tests:
\t{{- range $test := .Healthcheck.Test }}
\t Test = {{ $test }}
  {{- end }} {{ end -}}
{{- end }}
"""
