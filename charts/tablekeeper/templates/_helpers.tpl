{{/* The chart name, at most 63 characters. */}}
{{- define "tablekeeper.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object's name. */}}
{{- define "tablekeeper.fullname" -}}
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

{{- define "tablekeeper.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels that pick the operator's pods; never change them after release (Deployments forbid it). */}}
{{- define "tablekeeper.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tablekeeper.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "tablekeeper.labels" -}}
helm.sh/chart: {{ include "tablekeeper.chart" . }}
{{ include "tablekeeper.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: tablekeeper
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tablekeeper.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tablekeeper.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tablekeeper.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "tablekeeper.engineImage" -}}
{{- default (include "tablekeeper.image" .) .Values.operator.engineImage }}
{{- end }}

{{/*
What the operator does with namespaced objects, wherever it serves custom
resources: in a ClusterRole when it watches all namespaces, else in a Role in
each watched namespace. Each rule says why it is there; the chart's tests fail
on any verb or resource not on their list.
*/}}
{{- define "tablekeeper.operatorRules" -}}
# Serve the six kinds: read and watch them, patch finalizers and kopf's annotations.
- apiGroups: ["tablekeeper.io"]
  resources: ["tables", "pitrconfigs", "backups", "backupvaults", "backupplans", "restores"]
  verbs: ["get", "list", "watch", "patch", "update"]
# Report observedGeneration, conditions and phase.
- apiGroups: ["tablekeeper.io"]
  resources:
    - tables/status
    - pitrconfigs/status
    - backups/status
    - backupvaults/status
    - backupplans/status
    - restores/status
  verbs: ["get", "patch", "update"]
# A BackupPlan creates (and its lifecycle deletes) Backups; a Restore creates a Table.
- apiGroups: ["tablekeeper.io"]
  resources: ["backups", "tables"]
  verbs: ["create", "delete"]
# Each table's engine: a StatefulSet, its Service, and the SigV4 credentials Secret.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
# Secrets: read by name (vault keys, S3 credentials a BackupVault names) and
# write the generated credentials; never list or watch them.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "update", "patch", "delete"]
# Find the engine pods.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
# The engines' volumes: grown when a Table asks for more storage, deleted with
# the table when its retention policy says so.
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["get", "list", "watch", "patch", "delete"]
# Events on the objects (kopf posts core events; events.k8s.io for the newer API).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
