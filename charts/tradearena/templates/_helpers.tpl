{{/* Names ---------------------------------------------------------------- */}}
{{- define "tradearena.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tradearena.fullname" -}}
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

{{/* "<fullname>-<component>", e.g. include "tradearena.component" (list . "lobby") */}}
{{- define "tradearena.component" -}}
{{- $ctx := index . 0 -}}
{{- printf "%s-%s" (include "tradearena.fullname" $ctx) (index . 1) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tradearena.labels" -}}
{{- $ctx := index . 0 -}}
helm.sh/chart: {{ printf "%s-%s" $ctx.Chart.Name $ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
app.kubernetes.io/part-of: tradearena
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
{{ include "tradearena.selectorLabels" . }}
{{- end -}}

{{- define "tradearena.selectorLabels" -}}
{{- $ctx := index . 0 -}}
app.kubernetes.io/name: {{ include "tradearena.name" $ctx }}
app.kubernetes.io/instance: {{ $ctx.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{/* The image, by digest when one is given. */}}
{{- define "tradearena.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Match CRD shipped in crds/ (JSON): RBAC takes its group and plural from it. */}}
{{- define "tradearena.crd" -}}
{{- $crd := dict -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" -}}
{{- $doc := $.Files.Get $path | fromYaml -}}
{{- if eq (dig "spec" "names" "kind" "" $doc) "Match" -}}
{{- $crd = $doc -}}
{{- end -}}
{{- end -}}
{{- if not $crd -}}
{{- fail "crds/ holds no CustomResourceDefinition of kind Match" -}}
{{- end -}}
{{- $crd | toJson -}}
{{- end -}}

{{/* The MatchServerPool CRD shipped in crds/ (JSON): RBAC and the pools take its names. */}}
{{- define "tradearena.poolCrd" -}}
{{- $crd := dict -}}
{{- range $path, $_ := .Files.Glob "crds/*.yaml" -}}
{{- $doc := $.Files.Get $path | fromYaml -}}
{{- if eq (dig "spec" "names" "kind" "" $doc) "MatchServerPool" -}}
{{- $crd = $doc -}}
{{- end -}}
{{- end -}}
{{- if not $crd -}}
{{- fail "crds/ holds no CustomResourceDefinition of kind MatchServerPool" -}}
{{- end -}}
{{- $crd | toJson -}}
{{- end -}}

{{- define "tradearena.poolPlural" -}}
{{- (include "tradearena.poolCrd" . | fromJson).spec.names.plural -}}
{{- end -}}

{{- define "tradearena.matchGroup" -}}
{{- (include "tradearena.crd" . | fromJson).spec.group -}}
{{- end -}}

{{- define "tradearena.matchPlural" -}}
{{- (include "tradearena.crd" . | fromJson).spec.names.plural -}}
{{- end -}}

{{/* An emptyDir at /tmp: the only writable place under the read-only root. */}}
{{- define "tradearena.tmpVolume" -}}
- name: tmp
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end -}}

{{- define "tradearena.tmpMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
The OpenTelemetry variables of the `tracing` value as a JSON object (empty when off):
every process's env, and the operator's extra env of match-server pods.
*/}}
{{- define "tradearena.tracingVars" -}}
{{- $t := .Values.tracing -}}
{{- if $t.otlpEndpoint -}}
{{- dict "OTEL_TRACES_EXPORTER" "otlp" "OTEL_EXPORTER_OTLP_ENDPOINT" $t.otlpEndpoint "OTEL_EXPORTER_OTLP_PROTOCOL" "http/protobuf" "OTEL_TRACES_SAMPLER" $t.sampler "OTEL_TRACES_SAMPLER_ARG" (toString $t.samplerArg) "TRADEARENA_TRACE_ACTIONS_RATIO" (toString $t.actionsRatio) "OTEL_RESOURCE_ATTRIBUTES" (printf "k8s.namespace.name=%s" .Release.Namespace) | toJson -}}
{{- else -}}
{}
{{- end -}}
{{- end -}}

{{/*
What the operator adds to every match-server pod's env (dedicated and pool), as JSON:
the tracing variables, and how many Redis replicas each commit waits for.
*/}}
{{- define "tradearena.matchServerExtraVars" -}}
{{- $vars := include "tradearena.tracingVars" . | fromJson -}}
{{- $_ := set $vars "TRADEARENA_MATCH_MAX_SPECTATORS" (toString .Values.matchServer.spectators.maxPerServer) -}}
{{- $_ := set $vars "TRADEARENA_SPECTATOR_LAG_LIMIT_MS" (toString .Values.matchServer.spectators.lagLimitMs) -}}
{{- if gt (int .Values.redis.waitReplicas) 0 -}}
{{- $_ := set $vars "TRADEARENA_REDIS_WAIT_REPLICAS" (toString .Values.redis.waitReplicas) -}}
{{- $_ := set $vars "TRADEARENA_REDIS_WAIT_TIMEOUT_MS" (toString .Values.redis.waitTimeoutMs) -}}
{{- end -}}
{{- $vars | toJson -}}
{{- end -}}

{{- define "tradearena.tracingEnv" -}}
{{- range $name, $value := include "tradearena.tracingVars" . | fromJson }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- end -}}

{{/* Environment shared by every process. */}}
{{- define "tradearena.commonEnv" -}}
- name: TRADEARENA_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TRADEARENA_LOG_FORMAT
  value: json
{{- include "tradearena.tracingEnv" . }}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/*
TRADEARENA_REDIS_URL without the password in the manifest: the kubelet expands
$(TRADEARENA_REDIS_PASSWORD) from the Secret when it starts the container.
*/}}
{{- define "tradearena.redisEnv" -}}
{{ include "tradearena.redisPasswordEnv" . }}
- name: TRADEARENA_REDIS_URL
  value: {{ include "tradearena.redisUrlTemplate" . | quote }}
{{- end -}}

{{- define "tradearena.redisPasswordEnv" -}}
{{- if .Values.redis.existingSecret.name -}}
- name: TRADEARENA_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret.name }}
      key: {{ .Values.redis.existingSecret.passwordKey }}
{{- end -}}
{{- end -}}

{{/*
TRADEARENA_DATABASE_URL without a password: libpq (migrations) and asyncpg read it from
PGPASSWORD, which comes from the Secret.
*/}}
{{- define "tradearena.postgresqlEnv" -}}
{{- $p := .Values.postgresql -}}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $p.existingSecret.name }}
      key: {{ $p.existingSecret.passwordKey }}
- name: PGSSLMODE
  value: {{ $p.sslmode | quote }}
- name: TRADEARENA_DATABASE_URL
  value: {{ printf "postgresql://%s@%s:%d/%s?sslmode=%s" (urlquery $p.username) $p.host (int $p.port) $p.database $p.sslmode | quote }}
{{- end -}}

{{- define "tradearena.validate" -}}
{{- if .Values.postgresql.enabled -}}
{{- fail "postgresql.enabled=true: this chart deploys no PostgreSQL; point postgresql.host at an external one (e.g. RDS) and keep enabled=false" -}}
{{- end -}}
{{- if .Values.redis.enabled -}}
{{- fail "redis.enabled=true: this chart deploys no Redis; point redis.host at an external one (e.g. ElastiCache) and keep enabled=false" -}}
{{- end -}}
{{- if and .Values.redis.cluster (ne (int .Values.redis.db) 0) -}}
{{- fail (printf "redis.cluster=true: a Redis Cluster has database 0 only, not redis.db=%v" .Values.redis.db) -}}
{{- end -}}
{{- if gt (int .Values.matchServer.portRange.min) (int .Values.matchServer.portRange.max) -}}
{{- fail (printf "matchServer.portRange: min %v is above max %v" .Values.matchServer.portRange.min .Values.matchServer.portRange.max) -}}
{{- end -}}
{{- $tls := .Values.matchServer.tls -}}
{{- if and $tls.certManager.enabled (not $tls.enabled) -}}
{{- fail "matchServer.tls.certManager.enabled=true needs matchServer.tls.enabled=true" -}}
{{- end -}}
{{- if and $tls.enabled (not $tls.certManager.enabled) (not $tls.secretName) -}}
{{- fail "matchServer.tls.enabled=true: name the kubernetes.io/tls Secret (matchServer.tls.secretName) or let cert-manager create it (matchServer.tls.certManager.enabled=true)" -}}
{{- end -}}
{{- if $tls.certManager.enabled -}}
{{- if not $tls.certManager.issuerRef.name -}}
{{- fail "matchServer.tls.certManager.issuerRef.name: the cert-manager issuer that solves DNS-01 for the match servers' domain" -}}
{{- end -}}
{{- if not $tls.certManager.dnsNames -}}
{{- fail "matchServer.tls.certManager.dnsNames: the names to certify, e.g. [\"*.play.example.com\"]" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Secret (kubernetes.io/tls) match-server pods mount when matchServer.tls.enabled. */}}
{{- define "tradearena.matchServerTlsSecret" -}}
{{- default (include "tradearena.component" (list . "match-server-tls")) .Values.matchServer.tls.secretName -}}
{{- end -}}

{{/* The Redis URL scheme (tradearena/redisconn.py): redis/rediss for one Redis (or a
replication group's primary endpoint), redis+cluster/rediss+cluster for a Redis Cluster
(redis.cluster: ElastiCache's configuration endpoint or any node). */}}
{{- define "tradearena.redisScheme" -}}
{{- $r := .Values.redis -}}
{{- printf "%s%s" (ternary "rediss" "redis" $r.tls) (ternary "+cluster" "" (default false $r.cluster)) -}}
{{- end -}}

{{/* The Redis URL after the credentials: host:port, and the database but for a cluster
(a Redis Cluster has database 0 only). */}}
{{- define "tradearena.redisAddress" -}}
{{- $r := .Values.redis -}}
{{- if $r.cluster -}}
{{- printf "%s:%d" $r.host (int $r.port) -}}
{{- else -}}
{{- printf "%s:%d/%d" $r.host (int $r.port) (int $r.db) -}}
{{- end -}}
{{- end -}}

{{/* The Redis URL with a $(TRADEARENA_REDIS_PASSWORD) placeholder (or none without AUTH). */}}
{{- define "tradearena.redisUrlTemplate" -}}
{{- $r := .Values.redis -}}
{{- $scheme := include "tradearena.redisScheme" . -}}
{{- if $r.existingSecret.name -}}
{{- printf "%s://:$(TRADEARENA_REDIS_PASSWORD)@%s" $scheme (include "tradearena.redisAddress" .) -}}
{{- else -}}
{{- printf "%s://%s" $scheme (include "tradearena.redisAddress" .) -}}
{{- end -}}
{{- end -}}

{{/* Labels the operator puts on match-server pods (tradearena.contracts.resource; a test compares). */}}
{{- define "tradearena.matchServerSelector" -}}
app.kubernetes.io/name: tradearena-matchserver
app.kubernetes.io/component: match-server
{{- end -}}

{{/* The browser origins of the lobby's web client, as JSON: the ingress host (https
with TLS) and lobby.corsOrigins. Match servers refuse sockets from any other Origin. */}}
{{- define "tradearena.lobbyOrigins" -}}
{{- $l := .Values.lobby -}}
{{- $origins := list -}}
{{- if and $l.ingress.enabled $l.ingress.host -}}
{{- $origins = append $origins (printf "%s://%s" (ternary "https" "http" (not (empty $l.ingress.tls))) $l.ingress.host) -}}
{{- end -}}
{{- $origins = concat $origins $l.corsOrigins | uniq -}}
{{- toJson $origins -}}
{{- end -}}

{{/* The catalogue ConfigMap's name (empty when the packaged catalogue is used). */}}
{{- define "tradearena.catalogueConfigMap" -}}
{{- if .Values.catalogue -}}
{{- include "tradearena.component" (list . "catalogue") -}}
{{- end -}}
{{- end -}}

{{- define "tradearena.catalogueEnv" -}}
{{- if .Values.catalogue }}
- name: TRADEARENA_CATALOGUE
  value: /etc/tradearena/catalogue/modes.toml
{{- end }}
{{- end -}}

{{- define "tradearena.catalogueMount" -}}
{{- if .Values.catalogue }}
- name: catalogue
  mountPath: /etc/tradearena/catalogue
  readOnly: true
{{- end }}
{{- end -}}

{{- define "tradearena.catalogueVolume" -}}
{{- if .Values.catalogue }}
- name: catalogue
  configMap:
    name: {{ include "tradearena.catalogueConfigMap" . }}
{{- end }}
{{- end -}}

{{/* Rolls the pods that read the catalogue when it changes. */}}
{{- define "tradearena.catalogueChecksum" -}}
{{- if .Values.catalogue }}
checksum/catalogue: {{ .Values.catalogue | sha256sum | trunc 16 | quote }}
{{- end }}
{{- end -}}
