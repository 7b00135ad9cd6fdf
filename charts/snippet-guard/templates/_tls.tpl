{{/*
TLS material the chart generates for the webhook when neither cert-manager nor an existing
Secret is used. Call with (dict "root" $ "existing" <the Secret as lookup returns it, or an
empty dict>). Returns YAML with base64 values for tls.crt, tls.key and ca.crt.

The existing Secret's three values are reused when all are present and its
snippet-guard.io/dns-names annotation matches the DNS names needed now, so `helm upgrade`
keeps the CA and certificate (and the caBundle stays valid). Otherwise a new CA and a
serving certificate signed by it are generated. To rotate: delete the Secret and upgrade.

Helm shares no state between template files, so the one caller (the file with the Secret
and the ValidatingWebhookConfiguration) calls this once and uses the result for both.
*/}}
{{- define "snippet-guard.webhook.generatedTLS" -}}
{{- $root := .root }}
{{- $dnsNames := include "snippet-guard.webhook.dnsNames" $root | fromJsonArray }}
{{- $existing := .existing | default dict }}
{{- $data := dig "data" dict $existing }}
{{- $madeFor := dig "metadata" "annotations" "snippet-guard.io/dns-names" "" $existing }}
{{- if and (index $data "tls.crt") (index $data "tls.key") (index $data "ca.crt") (eq $madeFor (join "," $dnsNames)) }}
tls.crt: {{ index $data "tls.crt" }}
tls.key: {{ index $data "tls.key" }}
ca.crt: {{ index $data "ca.crt" }}
{{- else }}
{{- $days := int $root.Values.webhook.tls.validityDays }}
{{- $ca := genCA (printf "%s-ca" (include "snippet-guard.webhook.fullname" $root)) $days }}
{{- $cert := genSignedCert (index $dnsNames 2) nil $dnsNames $days $ca }}
tls.crt: {{ $cert.Cert | b64enc }}
tls.key: {{ $cert.Key | b64enc }}
ca.crt: {{ $ca.Cert | b64enc }}
{{- end }}
{{- end }}

{{/* The namespaceSelector of the Ingress webhook (and of ConfigMaps with scope "all" or "objectSelector"). */}}
{{- define "snippet-guard.webhook.namespaceSelector" -}}
{{- $skip := concat (list "kube-system" .Release.Namespace) .Values.webhook.namespaceSelector.excludeNamespaces | uniq -}}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml $skip | nindent 6 }}
  - key: snippet-guard.io/ignore
    operator: NotIn
    values: ["true"]
  {{- with .Values.webhook.namespaceSelector.extraMatchExpressions }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
