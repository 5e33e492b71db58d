{{/*
Expand the name of the chart.
*/}}
{{- define "govsync.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
We truncate at 63 chars because some Kubernetes name fields are limited to this (by the DNS naming spec).
If release name contains chart name it will be used as a full name.
*/}}
{{- define "govsync.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "govsync.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels
*/}}
{{- define "govsync.labels" -}}
helm.sh/chart: {{ include "govsync.chart" . }}
{{ include "govsync.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: govsync
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels
*/}}
{{- define "govsync.selectorLabels" -}}
app.kubernetes.io/name: {{ include "govsync.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one component. Call with (dict "ctx" $ "component" "ingest").
*/}}
{{- define "govsync.componentLabels" -}}
{{ include "govsync.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
Selector labels of one component. Call with (dict "ctx" $ "component" "ingest").
*/}}
{{- define "govsync.componentSelectorLabels" -}}
{{ include "govsync.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/*
The name of one component's objects, e.g. "<release>-govsync-sync-portal".
Call with (dict "ctx" $ "component" "sync-portal").
*/}}
{{- define "govsync.componentName" -}}
{{- printf "%s-%s" (include "govsync.fullname" .ctx | trunc (int (sub 62 (len .component)))) .component | trimSuffix "-" }}
{{- end }}

{{/*
Create the name of the service account to use
*/}}
{{- define "govsync.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "govsync.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference: repository, tag (the chart's appVersion by default) and an optional digest.
*/}}
{{- define "govsync.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString }}
{{- if eq $tag "latest" }}
{{- fail "image.tag: \"latest\" is not allowed; pin a version (and preferably image.digest)" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Checkov skips every object shares. Rendered as annotations; numbered from 1.
*/}}
{{- define "govsync.checkovCommonSkips" -}}
checkov.io/skip1: CKV_K8S_21=metadata.namespace is left to helm install --namespace (chart style rule)
{{- end }}

{{/*
The checksum of the configuration a component reads; a change restarts its pods.
Call with (dict "ctx" $ "file" "/ingest/configmap.yaml").
*/}}
{{- define "govsync.configChecksum" -}}
{{- $common := include (print .ctx.Template.BasePath "/common/configmap.yaml") .ctx }}
{{- $own := include (print .ctx.Template.BasePath .file) .ctx }}
{{- print $common $own | sha256sum }}
{{- end }}

{{/*
Fail early, with a message, on values that render but could never run.
*/}}
{{- define "govsync.validate" -}}
{{- $kafka := .Values.kafka }}
{{- if and (hasPrefix "SASL" $kafka.securityProtocol) (not $kafka.sasl.existingSecret) }}
{{- fail "kafka.securityProtocol is SASL_*: set kafka.sasl.existingSecret (the Secret holding the SASL password)" }}
{{- end }}
{{- if and (hasPrefix "SASL" $kafka.securityProtocol) (not $kafka.sasl.username) }}
{{- fail "kafka.securityProtocol is SASL_*: set kafka.sasl.username" }}
{{- end }}
{{- if and $kafka.tls.existingSecret (not (has $kafka.securityProtocol (list "SSL" "SASL_SSL"))) }}
{{- fail "kafka.tls.existingSecret is set but kafka.securityProtocol is not SSL or SASL_SSL" }}
{{- end }}
{{- if and (or $kafka.tls.certKey $kafka.tls.keyKey) (not (and $kafka.tls.certKey $kafka.tls.keyKey)) }}
{{- fail "kafka.tls.certKey and kafka.tls.keyKey go together (mutual TLS needs both)" }}
{{- end }}
{{- if and .Values.trustBundle.existingConfigMap .Values.trustBundle.existingSecret }}
{{- fail "trustBundle: set existingConfigMap or existingSecret, not both" }}
{{- end }}
{{- $partitions := int $kafka.topicPartitions }}
{{- $components := dict "ingest" .Values.ingest "sync.portal" .Values.sync.portal "sync.ndxp" .Values.sync.ndxp }}
{{- range $key, $c := $components }}
{{- if and $c.autoscaling.enabled $c.keda.enabled }}
{{- fail (printf "%s: autoscaling.enabled and keda.enabled exclude each other (KEDA manages its own HPA)" $key) }}
{{- end }}
{{- if gt (int $c.autoscaling.maxReplicas) $partitions }}
{{- fail (printf "%s.autoscaling.maxReplicas (%d) exceeds kafka.topicPartitions (%d): extra consumers would sit idle" $key (int $c.autoscaling.maxReplicas) $partitions) }}
{{- end }}
{{- if gt (int $c.keda.maxReplicaCount) $partitions }}
{{- fail (printf "%s.keda.maxReplicaCount (%d) exceeds kafka.topicPartitions (%d): extra consumers would sit idle" $key (int $c.keda.maxReplicaCount) $partitions) }}
{{- end }}
{{- if gt (int $c.autoscaling.minReplicas) (int $c.autoscaling.maxReplicas) }}
{{- fail (printf "%s.autoscaling.minReplicas exceeds maxReplicas" $key) }}
{{- end }}
{{- if gt (int $c.keda.minReplicaCount) (int $c.keda.maxReplicaCount) }}
{{- fail (printf "%s.keda.minReplicaCount exceeds maxReplicaCount" $key) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Checkov skips on Deployments, each with its reason; numbered after the common ones.
*/}}
{{- define "govsync.deploymentCheckovSkips" -}}
{{ include "govsync.checkovCommonSkips" . }}
checkov.io/skip2: CKV_K8S_35=pydantic-settings reads credentials from GOVSYNC_* env; values come from existing Secrets by secretKeyRef, never from chart values
{{- if ne .Values.image.pullPolicy "Always" }}
checkov.io/skip3: CKV_K8S_15=tags are immutable releases and a digest can be pinned; Always would make every pod start depend on the registry
{{- end }}
{{- if not .Values.image.digest }}
checkov.io/skip4: CKV_K8S_43=image.digest is optional (set in production values); the tag is never latest
{{- end }}
{{- end }}
