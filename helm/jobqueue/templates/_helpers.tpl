{{/* Names, labels and the pieces every pod shares. */}}

{{- define "jobqueue.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "jobqueue.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "jobqueue.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jobqueue.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jobqueue.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "jobqueue.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels of one component: (dict "ctx" $ "component" "api") */}}
{{- define "jobqueue.componentLabels" -}}
{{ include "jobqueue.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "jobqueue.componentSelector" -}}
{{ include "jobqueue.selectorLabels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "jobqueue.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- define "jobqueue.operatorImage" -}}
{{- printf "%s:%s" .Values.operator.image.repository (default .Chart.AppVersion .Values.operator.image.tag) -}}
{{- end -}}

{{- define "jobqueue.connectionSecret" -}}
{{- default (printf "%s-connection" (include "jobqueue.fullname" .)) .Values.connection.existingSecret -}}
{{- end -}}
{{- define "jobqueue.apiKeySecret" -}}
{{- default (printf "%s-api-key" (include "jobqueue.fullname" .)) .Values.api.existingKeySecret -}}
{{- end -}}
{{/* "true" when the chart deploys its own Redis: enabled and no external one named. */}}
{{- define "jobqueue.inChartRedis" -}}
{{- if and .Values.redis.enabled (not .Values.redis.external.url) -}}true{{- end -}}
{{- end -}}
{{- define "jobqueue.redisHost" -}}{{ include "jobqueue.fullname" . }}-redis{{- end -}}
{{- define "jobqueue.postgresqlHost" -}}{{ include "jobqueue.fullname" . }}-postgresql{{- end -}}

{{/*
A value generated once and kept: read back from the existing Secret on upgrade (lookup), so a
`helm upgrade` never rotates a password or API key behind the running pods. (dict "ctx" $ "secret" NAME
"key" KEY "length" N)
*/}}
{{- define "jobqueue.stableRandom" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing (index $existing.data .key) -}}
{{- index $existing.data .key | b64dec -}}
{{- else -}}
{{- randAlphaNum (int .length) -}}
{{- end -}}
{{- end -}}

{{- define "jobqueue.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end -}}

{{/* Environment every jobqueue process reads (connection settings from the connection Secret). */}}
{{- define "jobqueue.connectionEnv" -}}
- name: JOBQUEUE_REDIS_URL
  valueFrom: {secretKeyRef: {name: {{ include "jobqueue.connectionSecret" . }}, key: JOBQUEUE_REDIS_URL}}
- name: JOBQUEUE_DATABASE_URL
  valueFrom: {secretKeyRef: {name: {{ include "jobqueue.connectionSecret" . }}, key: JOBQUEUE_DATABASE_URL, optional: true}}
{{- with .Values.redis.external.passwordSecretName }}
- name: JOBQUEUE_REDIS_PASSWORD
  valueFrom: {secretKeyRef: {name: {{ . }}, key: {{ $.Values.redis.external.passwordSecretKey }}}}
{{- end }}
- name: JOBQUEUE_KEY_PREFIX
  value: {{ .Values.connection.keyPrefix | quote }}
- name: POD_NAME
  valueFrom: {fieldRef: {fieldPath: metadata.name}}
{{- end -}}

{{/* Scheduling knobs shared by every pod. */}}
{{- define "jobqueue.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations: {{ toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity: {{ toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Host networking of every jobqueue pod (not the in-chart Redis/PostgreSQL): the pod shares the node's
network namespace, so 127.0.0.1 is the node's loopback. ClusterFirstWithHostNet keeps cluster DNS for
such a pod where a cluster has it (plain ClusterFirst would fall back to the node's resolv.conf).
*/}}
{{- define "jobqueue.podNetwork" -}}
{{- if .Values.hostNetwork }}
hostNetwork: true
dnsPolicy: ClusterFirstWithHostNet
{{- end }}
{{- end -}}

{{/*
Where in-cluster Kubernetes clients (the operator, the API's pool routes, the examples' cleanup hook)
reach the API server. The kubelet sets KUBERNETES_SERVICE_HOST/PORT to the `kubernetes` Service's
ClusterIP; a container's own env wins over it, so a cluster whose ClusterIPs route nowhere from a pod
(no kube-proxy) can name the API server's real address here, one its serving certificate names.
*/}}
{{- define "jobqueue.kubernetesApiEnv" -}}
{{- with .Values.kubernetesApi.serviceHost }}
- {name: KUBERNETES_SERVICE_HOST, value: {{ . | quote }}}
{{- end }}
{{- with .Values.kubernetesApi.servicePort }}
- {name: KUBERNETES_SERVICE_PORT, value: {{ . | toString | quote }}}
{{- end }}
{{- end -}}

{{- define "jobqueue.validate" -}}
{{- if and (not .Values.connection.existingSecret) (not (and (or .Values.redis.enabled .Values.redis.external.url) .Values.postgresql.enabled)) -}}
{{- fail "connection.existingSecret is required unless postgresql.enabled and either redis.enabled or redis.external.url (the chart then writes the connection Secret)" -}}
{{- end -}}
{{- if and .Values.redis.external.passwordSecretName (not .Values.redis.external.url) (not .Values.connection.existingSecret) -}}
{{- fail "redis.external.passwordSecretName is the password of an external Redis: set redis.external.url (or connection.existingSecret); the in-chart Redis has a generated password of its own" -}}
{{- end -}}
{{- if and .Values.connection.existingSecret .Values.redis.external.url -}}
{{- fail "redis.external.url with connection.existingSecret: put the URL in that Secret's JOBQUEUE_REDIS_URL instead (WorkerPool workers read their connection from it); redis.external.passwordSecretName still applies" -}}
{{- end -}}
{{- if and .Values.hostNetwork .Values.examples.enabled (not .Values.operator.workerPoolPolicy.allowHostNamespaces) -}}
{{- fail "hostNetwork with examples.enabled needs operator.workerPoolPolicy.allowHostNamespaces: the example WorkerPool asks for hostNetwork, which the operator refuses otherwise" -}}
{{- end -}}
{{- end -}}

{{/* Names of the operator's cluster-scoped objects (ClusterRoles, their bindings, a ClusterKopfPeering)
carry the namespace: two releases of the same name in two namespaces (staging, prod) must not collide. */}}
{{- define "jobqueue.operatorClusterName" -}}
{{ .Release.Namespace }}-{{ include "jobqueue.fullname" . }}-operator
{{- end -}}
{{- define "jobqueue.operatorPeering" -}}
{{- if .Values.operator.watchAllNamespaces -}}
{{ include "jobqueue.operatorClusterName" . }}
{{- else -}}
{{ include "jobqueue.fullname" . }}-operator
{{- end -}}
{{- end -}}
