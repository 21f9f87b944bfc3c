{{/* Names, labels and the pieces every workload shares. */}}
{{- define "switchboard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "switchboard.labels" -}}
app.kubernetes.io/part-of: switchboard
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "switchboard.registryUrl" -}}
http://{{ .Release.Name }}-registry:{{ .Values.registry.port }}
{{- end -}}

{{- define "switchboard.gatewayUrl" -}}
http://{{ .Release.Name }}-gateway:{{ .Values.gateway.port }}
{{- end -}}

{{- define "switchboard.trustIssuer" -}}
{{- if .Values.oidc.jwksUrl -}}
{{ .Values.oidc.issuer }}={{ .Values.oidc.jwksUrl }}
{{- else -}}
{{ .Values.oidc.issuer }}
{{- end -}}
{{- end -}}

{{- define "switchboard.otlpEnv" -}}
{{- if .Values.otlp.endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .Values.otlp.endpoint | quote }}
{{- end }}
{{- end -}}

{{- define "switchboard.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  seccompProfile:
    type: RuntimeDefault
{{- end -}}

{{- define "switchboard.containerSecurity" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities:
    drop: ["ALL"]
{{- end -}}

{{- define "switchboard.probes" -}}
readinessProbe:
  httpGet: {path: /readyz, port: http}
  periodSeconds: 5
livenessProbe:
  httpGet: {path: /healthz, port: http}
  initialDelaySeconds: 10
  periodSeconds: 10
{{- end -}}
