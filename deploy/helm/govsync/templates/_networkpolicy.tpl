{{/*
One egress rule: TCP ports to peers. An empty peer list means any destination on those ports
(documented in values.yaml); set peers in production.
*/}}
{{- define "govsync.egressRule" -}}
- ports:
    {{- range .ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with .peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/*
The NetworkPolicy of one component: ingress from monitoring (and, for ingest, the callers of
/v1/events), egress to DNS, Kafka and the component's destinations only.
Call with (dict "ctx" $ "component" "sync-portal" "destinations" (list "portal") "callers" false);
"callersKey" names the networkPolicy entry of the callers (default ingestCallers).
*/}}
{{- define "govsync.networkPolicy" -}}
{{- $np := .ctx.Values.networkPolicy }}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "govsync.componentName" (dict "ctx" .ctx "component" .component) }}
  labels:
    {{- include "govsync.componentLabels" (dict "ctx" .ctx "component" .component) | nindent 4 }}
  annotations:
    {{- include "govsync.checkovCommonSkips" .ctx | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "govsync.componentSelectorLabels" (dict "ctx" .ctx "component" .component) | nindent 6 }}
  policyTypes:
    - Ingress
    - Egress
  ingress:
    {{- /* /metrics and /v1/events share the one HTTP port: a NetworkPolicy cannot tell paths apart. */}}
    {{- with $np.monitoring.peers }}
    - from:
        {{- toYaml . | nindent 8 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
    {{- $callers := index $np (default "ingestCallers" .callersKey) }}
    {{- if and .callers $callers.peers }}
    - from:
        {{- toYaml $callers.peers | nindent 8 }}
      ports:
        - port: http
          protocol: TCP
    {{- end }}
  egress:
    - ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
      {{- with $np.dns.peers }}
      to:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    {{- include "govsync.egressRule" $np.kafka | nindent 4 }}
    {{- range .destinations }}
    {{- include "govsync.egressRule" (index $np .) | nindent 4 }}
    {{- end }}
{{- end }}
