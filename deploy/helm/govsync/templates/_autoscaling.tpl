{{/*
The HorizontalPodAutoscaler of one component on CPU.
Call with (dict "ctx" $ "component" "ingest" "cfg" .Values.ingest).
*/}}
{{- define "govsync.hpa" -}}
{{- $name := include "govsync.componentName" (dict "ctx" .ctx "component" .component) }}
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {{ $name }}
  labels:
    {{- include "govsync.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
  annotations:
    {{- include "govsync.checkovCommonSkips" .ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicas: {{ .cfg.autoscaling.minReplicas }}
  maxReplicas: {{ .cfg.autoscaling.maxReplicas }}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {{ .cfg.autoscaling.targetCPUUtilizationPercentage }}
{{- end }}

{{/*
The KEDA ScaledObject of one component on its Kafka consumer lag, read from Prometheus (the lag
the service exports itself), so KEDA needs no Kafka credentials and no consumer group name.
Call with (dict "ctx" $ "component" "ingest" "cfg" .Values.ingest "query" "<PromQL>").
*/}}
{{- define "govsync.scaledObject" -}}
{{- $name := include "govsync.componentName" (dict "ctx" .ctx "component" .component) }}
{{- $keda := .ctx.Values.keda }}
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata:
  name: {{ $name }}
  labels:
    {{- include "govsync.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
  annotations:
    {{- include "govsync.checkovCommonSkips" .ctx | nindent 4 }}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {{ $name }}
  minReplicaCount: {{ .cfg.keda.minReplicaCount }}
  # Never more consumers than partitions: the extra ones would sit idle (checked at render).
  maxReplicaCount: {{ .cfg.keda.maxReplicaCount }}
  pollingInterval: {{ $keda.pollingInterval }}
  cooldownPeriod: {{ $keda.cooldownPeriod }}
  fallback:
    failureThreshold: 3
    replicas: {{ .cfg.keda.minReplicaCount }}
  triggers:
    - type: prometheus
      metricType: AverageValue
      metadata:
        serverAddress: {{ $keda.prometheusServerAddress | quote }}
        query: {{ .query | quote }}
        threshold: {{ .cfg.keda.lagThreshold | quote }}
        ignoreNullValues: "true"
      {{- with $keda.authenticationRef }}
      authenticationRef:
        name: {{ . }}
      {{- end }}
{{- end }}
