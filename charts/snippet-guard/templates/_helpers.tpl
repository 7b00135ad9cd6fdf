{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "snippet-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name prefix of every object. Component names append "-webhook" / "-controller"
(11 characters), so the prefix is cut at 52.
*/}}
{{- define "snippet-guard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "snippet-guard.webhook.fullname" -}}
{{- printf "%s-webhook" (include "snippet-guard.fullname" .) }}
{{- end }}

{{- define "snippet-guard.controller.fullname" -}}
{{- printf "%s-controller" (include "snippet-guard.fullname" .) }}
{{- end }}

{{- define "snippet-guard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "snippet-guard.labels" -}}
helm.sh/chart: {{ include "snippet-guard.chart" . }}
{{ include "snippet-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: snippet-guard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "snippet-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "snippet-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels and selector labels of one component: (dict "root" $ "component" "webhook"). */}}
{{- define "snippet-guard.componentLabels" -}}
{{ include "snippet-guard.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "snippet-guard.componentSelectorLabels" -}}
{{ include "snippet-guard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "snippet-guard.webhook.serviceAccountName" -}}
{{- if .Values.webhook.serviceAccount.create }}
{{- default (include "snippet-guard.webhook.fullname" .) .Values.webhook.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.webhook.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "snippet-guard.controller.serviceAccountName" -}}
{{- if .Values.controller.serviceAccount.create }}
{{- default (include "snippet-guard.controller.fullname" .) .Values.controller.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.controller.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag or repository@digest; the tag defaults to the chart's appVersion. */}}
{{- define "snippet-guard.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* "<namespace>/<name>" of the ingress-nginx controller ConfigMap. */}}
{{- define "snippet-guard.controllerConfigMap" -}}
{{- printf "%s/%s" .Values.ingressNginx.namespace .Values.ingressNginx.configMapName }}
{{- end }}

{{/*
The controller ConfigMaps the chart knows of, as a JSON list of {namespace, name}: ingress-nginx's
and, if set, the proxy-set-headers one ("name" or "namespace/name"), and F5 NGINX Ingress
Controller's when f5NginxIngress.enabled.
*/}}
{{- define "snippet-guard.controllerConfigMaps" -}}
{{- $list := list (dict "namespace" .Values.ingressNginx.namespace "name" .Values.ingressNginx.configMapName) }}
{{- with .Values.ingressNginx.proxySetHeadersConfigMapName }}
{{- $parts := splitList "/" . }}
{{- if eq (len $parts) 2 }}
{{- $list = append $list (dict "namespace" (index $parts 0) "name" (index $parts 1)) }}
{{- else if eq (len $parts) 1 }}
{{- $list = append $list (dict "namespace" $.Values.ingressNginx.namespace "name" .) }}
{{- else }}
{{- fail (printf "ingressNginx.proxySetHeadersConfigMapName must be \"name\" or \"namespace/name\", got %q" .) }}
{{- end }}
{{- end }}
{{- if .Values.f5NginxIngress.enabled }}
{{- $list = append $list (dict "namespace" .Values.f5NginxIngress.namespace "name" .Values.f5NginxIngress.configMapName) }}
{{- end }}
{{- toJson $list }}
{{- end }}

{{/* Sorted, de-duplicated namespaces of the controller ConfigMaps, as a JSON list. */}}
{{- define "snippet-guard.controllerNamespaces" -}}
{{- $namespaces := list }}
{{- range (include "snippet-guard.controllerConfigMaps" . | fromJsonArray) }}
{{- $namespaces = append $namespaces .namespace }}
{{- end }}
{{- $namespaces | uniq | sortAlpha | toJson }}
{{- end }}

{{/*
Sorted, de-duplicated names of the controller ConfigMaps, as a JSON list: the
`resourceNames` of the ClusterRoles that read only those ConfigMaps (RBAC names carry no
namespace, and a ClusterRole needs no namespace to exist at install time).
*/}}
{{- define "snippet-guard.controllerConfigMapNames" -}}
{{- $names := list }}
{{- range (include "snippet-guard.controllerConfigMaps" . | fromJsonArray) }}
{{- $names = append $names .name }}
{{- end }}
{{- $names | uniq | sortAlpha | toJson }}
{{- end }}

{{/*
Name of the Secret the webhook serves TLS from (keys tls.crt, tls.key, and ca.crt unless
the user brings their own Secret).
*/}}
{{/*
Where the webhook's serving certificate comes from: certManager, existingSecret, selfManaged
(the webhook mints and renews it in a Secret and sets the caBundle itself) or chart (generated
at render time, kept on upgrade through `lookup`).
*/}}
{{- define "snippet-guard.webhook.tlsMode" -}}
{{- if .Values.certManager.enabled }}certManager
{{- else if .Values.webhook.tls.existingSecret }}existingSecret
{{- else }}{{ .Values.webhook.tls.mode }}
{{- end }}
{{- end }}

{{- define "snippet-guard.webhook.tlsSecretName" -}}
{{- $mode := include "snippet-guard.webhook.tlsMode" . }}
{{- if eq $mode "existingSecret" }}
{{- .Values.webhook.tls.existingSecret }}
{{- else if eq $mode "selfManaged" }}
{{- printf "%s-managed-tls" (include "snippet-guard.webhook.fullname" .) }}
{{- else }}
{{- printf "%s-tls" (include "snippet-guard.webhook.fullname" .) }}
{{- end }}
{{- end }}

{{/* DNS names the API server may use for the webhook Service. */}}
{{- define "snippet-guard.webhook.dnsNames" -}}
{{- $svc := include "snippet-guard.webhook.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/*
Pod anti-affinity on the node for one component:
(dict "root" $ "component" "webhook" "mode" "soft|hard|none").
*/}}
{{- define "snippet-guard.podAntiAffinity" -}}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "snippet-guard.componentSelectorLabels" (dict "root" .root "component" .component) | fromYaml)) }}
{{- if eq .mode "soft" -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        {{- toYaml $term | nindent 8 }}
{{- else if eq .mode "hard" -}}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - {{ toYaml $term | nindent 6 | trim }}
{{- end }}
{{- end }}

{{/*
Service account token, mounted only into the container that calls the API server, at the
path client libraries read in-cluster config from. It is the same projected volume the
kubelet would add with automountServiceAccountToken: true (short-lived bound token, the
cluster CA and the namespace), but explicit and read-only, so the pod can set
automountServiceAccountToken: false.
*/}}
{{- define "snippet-guard.apiTokenVolume" -}}
- name: kube-api-access
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          path: token
          expirationSeconds: 3607
      - configMap:
          name: kube-root-ca.crt
          items:
            - key: ca.crt
              path: ca.crt
      - downwardAPI:
          items:
            - path: namespace
              fieldRef:
                apiVersion: v1
                fieldPath: metadata.namespace
{{- end }}

{{- define "snippet-guard.apiTokenVolumeMount" -}}
- name: kube-api-access
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}

{{- define "snippet-guard.commonEnv" -}}
- name: RUST_LOG
  value: {{ .Values.logging.envFilter | quote }}
{{- end }}

{{/*
Event reasons the controller publishes: each rule id in PascalCase (src/rules/<rule_id>.rs).
tests/chart checks this list against the rule files.
*/}}
{{- define "snippet-guard.eventReasons" -}}
{{- list "RedundantForwardedProto" "DuplicateControllerHeader" "DuplicateSnippetHeader" "IneffectiveEmptyHeader" "IneffectiveInheritedHeader" "InvalidSnippet" "IgnoredSnippet" "UnknownSuppression" | toJson }}
{{- end }}

{{/*
"true" when the webhook's shutdown delay is the kubelet's native preStop sleep action
(webhook.shutdownDelayMode: preStop, or auto on Kubernetes 1.30 and later, where the
PodLifecycleSleepAction feature is on by default); else the process delays (`--shutdown-delay`).
*/}}
{{- define "snippet-guard.webhook.preStopSleep" -}}
{{- $mode := .Values.webhook.shutdownDelayMode }}
{{- if and (gt (int .Values.webhook.shutdownDelaySeconds) 0) (or (eq $mode "preStop") (and (eq $mode "auto") (semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version))) }}true{{ else }}false{{ end }}
{{- end }}
