{{- define "memoryc.labels" -}}
app.kubernetes.io/part-of: memoryc
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "memoryc.operatorSelector" -}}
app.kubernetes.io/name: memoryc-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "memoryc.platformSelector" -}}
app.kubernetes.io/name: memoryc-platform
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of the operator's and the platform's objects: the common ones and the name (the
selector's instance label is already among the common ones, so it is not written twice). */}}
{{- define "memoryc.operatorLabels" -}}
{{ include "memoryc.labels" . }}
app.kubernetes.io/name: memoryc-operator
{{- end -}}

{{- define "memoryc.platformLabels" -}}
{{ include "memoryc.labels" . }}
app.kubernetes.io/name: memoryc-platform
{{- end -}}

{{- define "memoryc.image" -}}
{{ .image.repository }}:{{ .image.tag | default .appVersion }}
{{- end -}}

{{- define "memoryc.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end -}}
