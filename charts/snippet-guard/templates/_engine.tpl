{{/*
The engine's settings, the same for the webhook and the controller (the `lint` options that say
how to judge): one list of arguments, from the `engine` values.
*/}}
{{- define "snippet-guard.engineArgs" -}}
{{- $controllers := list }}
{{- if .Values.ingressNginx.enabled }}{{ $controllers = append $controllers "ingress-nginx" }}{{ end }}
{{- if .Values.f5NginxIngress.enabled }}{{ $controllers = append $controllers "f5-nginx-ingress" }}{{ end }}
{{- if .Values.nginxGatewayFabric.enabled }}{{ $controllers = append $controllers "nginx-gateway-fabric" }}{{ end }}
{{- if not $controllers }}
{{- fail "enable at least one controller: ingressNginx.enabled, f5NginxIngress.enabled or nginxGatewayFabric.enabled" }}
{{- end }}
- --controller={{ join "," $controllers }}
- --controller-version={{ .Values.engine.controllerVersion }}
- --annotations-prefix={{ .Values.engine.annotationsPrefix }}
{{- range .Values.engine.ingressClasses }}
- --ingress-class={{ . }}
{{- end }}
{{- with .Values.engine.select }}
- --select={{ join "," . }}
{{- end }}
{{- with .Values.engine.ignore }}
- --ignore={{ join "," . }}
{{- end }}
{{- with .Values.f5NginxIngress }}
{{- if .enabled }}
- --nic-version={{ .version }}
- --nic-configmap={{ .namespace }}/{{ .configMapName }}
{{- if ne (toString .enableSnippets) "" }}
- --nic-enable-snippets={{ .enableSnippets }}
{{- end }}
{{- range .ingressClasses }}
- --nic-ingress-class={{ . }}
{{- end }}
{{- end }}
{{- end }}
{{- with .Values.nginxGatewayFabric }}
{{- if and .enabled (ne (toString .enableSnippets) "") }}
- --ngf-snippets={{ .enableSnippets }}
{{- end }}
{{- end }}
{{- range .Values.engine.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}
