{{/*
The engine's settings, the same for the webhook and the controller (the `lint` options that say
how to judge): one list of arguments, from the `engine` values.
*/}}
{{- define "snippet-guard.engineArgs" -}}
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
{{- range .Values.engine.extraArgs }}
- {{ . }}
{{- end }}
{{- end }}
