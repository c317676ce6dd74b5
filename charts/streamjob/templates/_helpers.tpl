{{/* Names and labels shared by the templates. */}}
{{- define "streamjob.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "streamjob.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "streamjob.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "streamjob.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "streamjob.labels" -}}
{{ include "streamjob.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "streamjob.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
What the operator calls in the namespaces it watches (tests/deploy/test_rbac.py derives the same
set from operator/clients/kube.py and the kopf handlers, and fails when they differ):
- streamjobs: kopf lists and watches them and patches finalizers and annotations; the operator
  reads one (get) and patches its status subresource;
- pods: kopf watches them (child pod events); the operator lists, creates and deletes them;
- services and configmaps: the JobManager Service and the job ConfigMap;
- secrets: get only, to check that a credentials Secret has its keys (values are never read);
- events: the operator's own Events and kopf's.
*/}}
{{- define "streamjob.namespacedRules" -}}
- apiGroups: [streamjob.io]
  resources: [streamjobs]
  verbs: [get, list, watch, patch]
- apiGroups: [streamjob.io]
  resources: [streamjobs/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list, watch, create, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, create, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end -}}

{{/* kopf notices CRDs created or deleted while it runs (cluster-scoped in both modes). */}}
{{- define "streamjob.crdRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [list, watch]
{{- end -}}
