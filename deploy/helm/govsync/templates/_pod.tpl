{{/*
Environment variables filled from existing Secrets, shared by every component: the Kafka SASL
password, the TLS key password and the admin token. Credentials never live in values.
*/}}
{{- define "govsync.commonSecretEnv" -}}
{{- $kafka := .Values.kafka }}
{{- if and (hasPrefix "SASL" $kafka.securityProtocol) $kafka.sasl.existingSecret }}
- name: GOVSYNC_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.sasl.existingSecret }}
      key: {{ $kafka.sasl.passwordKey }}
{{- end }}
{{- if and $kafka.tls.existingSecret $kafka.tls.keyPasswordKey }}
- name: GOVSYNC_KAFKA_SSL_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $kafka.tls.existingSecret }}
      key: {{ $kafka.tls.keyPasswordKey }}
{{- end }}
{{- if .Values.adminToken.existingSecret }}
- name: GOVSYNC_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.adminToken.existingSecret }}
      key: {{ .Values.adminToken.key }}
{{- end }}
{{- end }}

{{/*
The pod template of one component. Call with
(dict "ctx" $ "component" "sync-portal" "cfg" .Values.sync.portal "args" (list "sync" "--target" "portal")
      "configFile" "/sync/configmap.yaml" "configMap" "<name>" "secretEnv" "<yaml list>"
      ["mounts" "<yaml list>" "volumes" "<yaml list>"])
*/}}
{{- define "govsync.podTemplate" -}}
{{- $ctx := .ctx }}
{{- $pod := $ctx.Values.pod }}
{{- $selector := include "govsync.componentSelectorLabels" (dict "ctx" $ctx "component" .component) }}
metadata:
  labels:
    {{- include "govsync.componentLabels" (dict "ctx" $ctx "component" .component) | nindent 4 }}
    {{- with $pod.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include "govsync.configChecksum" (dict "ctx" $ctx "file" .configFile) }}
    {{- with $pod.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "govsync.serviceAccountName" $ctx }}
  # The services never call the Kubernetes API.
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: {{ $pod.terminationGracePeriodSeconds }}
  {{- with $pod.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with $ctx.Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  securityContext:
    {{- toYaml $pod.podSecurityContext | nindent 4 }}
  {{- if $pod.topologySpread.enabled }}
  topologySpreadConstraints:
    {{- range $pod.topologySpread.topologyKeys }}
    - maxSkew: {{ $pod.topologySpread.maxSkew }}
      topologyKey: {{ . }}
      whenUnsatisfiable: {{ $pod.topologySpread.whenUnsatisfiable }}
      labelSelector:
        matchLabels:
          {{- $selector | nindent 10 }}
    {{- end }}
  {{- end }}
  {{- with $pod.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $pod.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $pod.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: {{ .component }}
      image: {{ include "govsync.image" $ctx | quote }}
      imagePullPolicy: {{ $ctx.Values.image.pullPolicy }}
      args:
        {{- toYaml .args | nindent 8 }}
      ports:
        - name: http
          containerPort: {{ .cfg.port }}
          protocol: TCP
      envFrom:
        - configMapRef:
            name: {{ include "govsync.componentName" (dict "ctx" $ctx "component" "common") }}
        - configMapRef:
            name: {{ .configMap }}
      {{- $env := print (include "govsync.commonSecretEnv" $ctx) .secretEnv | trim }}
      {{- if or $env .cfg.extraEnv }}
      env:
        {{- with $env }}
        {{- . | nindent 8 }}
        {{- end }}
        {{- with .cfg.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- end }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml $pod.probes.startup | nindent 8 }}
      livenessProbe:
        httpGet:
          path: /healthz
          port: http
        {{- toYaml $pod.probes.liveness | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http
        {{- toYaml $pod.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml .cfg.resources | nindent 8 }}
      securityContext:
        {{- toYaml $pod.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
        {{- with .mounts }}
        {{- . | trim | nindent 8 }}
        {{- end }}
        {{- if $ctx.Values.kafka.tls.existingSecret }}
        - name: kafka-tls
          mountPath: /etc/govsync/kafka-tls
          readOnly: true
        {{- end }}
        {{- if or $ctx.Values.trustBundle.existingConfigMap $ctx.Values.trustBundle.existingSecret }}
        - name: trust-bundle
          mountPath: /etc/govsync/trust
          readOnly: true
        {{- end }}
  volumes:
    # The root filesystem is read-only; /tmp is the only writable place.
    - name: tmp
      emptyDir:
        sizeLimit: {{ $pod.tmpSizeLimit }}
    {{- with .volumes }}
    {{- . | trim | nindent 4 }}
    {{- end }}
    {{- with $ctx.Values.kafka.tls.existingSecret }}
    - name: kafka-tls
      secret:
        secretName: {{ . }}
        defaultMode: 0440
    {{- end }}
    {{- if $ctx.Values.trustBundle.existingConfigMap }}
    - name: trust-bundle
      configMap:
        name: {{ $ctx.Values.trustBundle.existingConfigMap }}
        items:
          - key: {{ $ctx.Values.trustBundle.key }}
            path: {{ $ctx.Values.trustBundle.key }}
    {{- else if $ctx.Values.trustBundle.existingSecret }}
    - name: trust-bundle
      secret:
        secretName: {{ $ctx.Values.trustBundle.existingSecret }}
        defaultMode: 0440
        items:
          - key: {{ $ctx.Values.trustBundle.key }}
            path: {{ $ctx.Values.trustBundle.key }}
    {{- end }}
{{- end }}
