{{/*
Names, labels and shared fragments. Every name is namespaced with the chart name because
template names are global across subcharts.
*/}}

{{- define "clevertap-consumer.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name, 63 characters at most (DNS label). */}}
{{- define "clevertap-consumer.fullname" -}}
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

{{- define "clevertap-consumer.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "clevertap-consumer.selectorLabels" -}}
app.kubernetes.io/name: {{ include "clevertap-consumer.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Standard labels; component "consumer" unless called through labelsFor. */}}
{{- define "clevertap-consumer.labels" -}}
{{ include "clevertap-consumer.labelsFor" (dict "context" . "component" "consumer") }}
{{- end }}

{{- define "clevertap-consumer.labelsFor" -}}
{{- $ctx := .context -}}
helm.sh/chart: {{ include "clevertap-consumer.chart" $ctx }}
{{ include "clevertap-consumer.selectorLabels" $ctx }}
app.kubernetes.io/version: {{ $ctx.Values.image.tag | default $ctx.Chart.AppVersion | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: clevertap-consumer
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata.annotations block for objects, from commonAnnotations plus an optional dict. */}}
{{- define "clevertap-consumer.annotations" -}}
{{- $all := merge (deepCopy (.extra | default dict)) (deepCopy (.context.Values.commonAnnotations | default dict)) }}
{{- with $all }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "clevertap-consumer.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "clevertap-consumer.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "clevertap-consumer.image" -}}
{{- $repo := .Values.image.repository }}
{{- if .Values.image.registry }}{{ $repo = printf "%s/%s" .Values.image.registry .Values.image.repository }}{{ end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repo .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repo (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* Where the pod reads things. The app's SECRETS_DIRS points at the secrets directory. */}}
{{- define "clevertap-consumer.destinationsDir" -}}/etc/clevertap-consumer/destinations{{- end }}
{{- define "clevertap-consumer.secretsDir" -}}/etc/clevertap-consumer/secrets{{- end }}
{{- define "clevertap-consumer.kafkaTlsDir" -}}/etc/clevertap-consumer/kafka-tls{{- end }}
{{- define "clevertap-consumer.kafkaClientTlsDir" -}}/etc/clevertap-consumer/kafka-client-tls{{- end }}
{{- define "clevertap-consumer.registryTlsDir" -}}/etc/clevertap-consumer/schema-registry-tls{{- end }}

{{/* Name of the Secret the chart generates (only rendered when it holds something). */}}
{{- define "clevertap-consumer.secretName" -}}
{{- include "clevertap-consumer.fullname" . }}
{{- end }}

{{- define "clevertap-consumer.destinationsConfigMapName" -}}
{{- printf "%s-destinations" (include "clevertap-consumer.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
How each destination gets its passcode, as a list of dicts:
  {id, mode: "file"|"env", secretName, secretKey, path, env, value}
"file" destinations are mounted from a Secret (the chart's or clevertap.existingSecret) at
<secretsDir>/clevertap-passcodes/<id>; "env" destinations name a variable the pod has.
Serialised as JSON because named templates can only return strings.
*/}}
{{- define "clevertap-consumer.passcodes" -}}
{{- $out := list }}
{{- $generated := include "clevertap-consumer.secretName" . }}
{{- range $id, $d := .Values.destinations }}
{{- $d = $d | default dict }}
{{- if not (regexMatch "^[A-Za-z0-9._-]{1,200}$" $id) }}
{{- fail (printf "destinations.%s: a destination id may only contain letters, digits, '.', '_' and '-'" $id) }}
{{- end }}
{{- if not $d.accountId }}
{{- fail (printf "destinations.%s.accountId is required" $id) }}
{{- end }}
{{- if $d.passcodeEnv }}
{{- if or $d.passcode $d.passcodeKey }}
{{- fail (printf "destinations.%s: give passcodeEnv, or passcode/passcodeKey, not both" $id) }}
{{- end }}
{{- $out = append $out (dict "id" $id "mode" "env" "env" $d.passcodeEnv) }}
{{- else if $.Values.clevertap.existingSecret }}
{{- if $d.passcode }}
{{- fail (printf "destinations.%s.passcode is set but clevertap.existingSecret is used: put the passcode in that Secret under key %q (or set passcodeKey)" $id ($d.passcodeKey | default $id)) }}
{{- end }}
{{- $out = append $out (dict "id" $id "mode" "file" "secretName" $.Values.clevertap.existingSecret "secretKey" ($d.passcodeKey | default $id) "path" (printf "clevertap-passcodes/%s" $id)) }}
{{- else }}
{{- if $d.passcodeKey }}
{{- fail (printf "destinations.%s.passcodeKey needs clevertap.existingSecret" $id) }}
{{- end }}
{{- if not $d.passcode }}
{{- fail (printf "destinations.%s: no passcode. Set destinations.%s.passcode, or clevertap.existingSecret, or passcodeEnv" $id $id) }}
{{- end }}
{{- $out = append $out (dict "id" $id "mode" "file" "secretName" $generated "secretKey" (printf "clevertap-passcode-%s" $id) "path" (printf "clevertap-passcodes/%s" $id) "value" $d.passcode) }}
{{- end }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
Every secret file the pod reads, as JSON list of {secretName, key, path, value}: the projected
volume at secretsDir is built from it, and the generated Secret from the entries with a value.
Paths for the settings match the lower-case variable names the app looks for.
*/}}
{{- define "clevertap-consumer.secretFiles" -}}
{{- $files := list }}
{{- $generated := include "clevertap-consumer.secretName" . }}
{{- $sasl := .Values.kafka.sasl }}
{{- if $sasl.existingSecret }}
{{- $files = append $files (dict "secretName" $sasl.existingSecret "key" $sasl.existingSecretPasswordKey "path" "kafka_sasl_password") }}
{{- else if $sasl.password }}
{{- $files = append $files (dict "secretName" $generated "key" "kafka-sasl-password" "path" "kafka_sasl_password" "value" $sasl.password) }}
{{- end }}
{{- $oauth := .Values.kafka.sasl.oauthbearer }}
{{- if $oauth.existingSecret }}
{{- $files = append $files (dict "secretName" $oauth.existingSecret "key" $oauth.existingSecretClientSecretKey "path" "kafka_sasl_oauthbearer_client_secret") }}
{{- else if $oauth.clientSecret }}
{{- $files = append $files (dict "secretName" $generated "key" "kafka-sasl-oauthbearer-client-secret" "path" "kafka_sasl_oauthbearer_client_secret" "value" $oauth.clientSecret) }}
{{- end }}
{{- $sr := .Values.schemaRegistry }}
{{- if $sr.existingSecret }}
{{- $files = append $files (dict "secretName" $sr.existingSecret "key" $sr.existingSecretUserInfoKey "path" "schema_registry_basic_auth_user_info") }}
{{- else if $sr.basicAuthUserInfo }}
{{- $files = append $files (dict "secretName" $generated "key" "schema-registry-basic-auth-user-info" "path" "schema_registry_basic_auth_user_info" "value" $sr.basicAuthUserInfo) }}
{{- end }}
{{- range (include "clevertap-consumer.passcodes" . | fromJsonArray) }}
{{- if eq .mode "file" }}
{{- $files = append $files (dict "secretName" .secretName "key" .secretKey "path" .path "value" (.value | default "")) }}
{{- end }}
{{- end }}
{{- toJson $files }}
{{- end }}

{{/* The destinations file, JSON, passcodes replaced by file paths or variable names. */}}
{{- define "clevertap-consumer.destinationsFile" -}}
{{- $secretsDir := include "clevertap-consumer.secretsDir" . }}
{{- $sources := dict }}
{{- range (include "clevertap-consumer.passcodes" . | fromJsonArray) }}
{{- $_ := set $sources .id . }}
{{- end }}
{{- $list := list }}
{{- range $id, $d := .Values.destinations }}
{{- $entry := dict "id" $id "accountId" (toString $d.accountId) }}
{{- range $key := list "region" "profile" "eventFilteringOption" }}
{{- if hasKey $d $key }}{{ $_ := set $entry $key (get $d $key) }}{{ end }}
{{- end }}
{{- range $key := list "trackAnonymous" "enableObjectIdMapping" "whitelistedEvents" "blacklistedEvents" }}
{{- if hasKey $d $key }}{{ $_ := set $entry $key (get $d $key) }}{{ end }}
{{- end }}
{{- $src := get $sources $id }}
{{- if eq $src.mode "env" }}
{{- $_ := set $entry "passcodeEnv" $src.env }}
{{- else }}
{{- $_ := set $entry "passcodeFile" (printf "%s/%s" $secretsDir $src.path) }}
{{- end }}
{{- $list = append $list $entry }}
{{- end }}
{{- dict "destinations" $list | toPrettyJson }}
{{- end }}

{{/* KEDA's name for a librdkafka SASL mechanism. */}}
{{- define "clevertap-consumer.kedaSasl" -}}
{{- $m := upper .Values.kafka.sasl.mechanism }}
{{- $map := dict "PLAIN" "plaintext" "SCRAM-SHA-256" "scram_sha256" "SCRAM-SHA-512" "scram_sha512" "GSSAPI" "gssapi" "OAUTHBEARER" "oauthbearer" }}
{{- if not (hasKey $map $m) }}
{{- fail (printf "kafka.sasl.mechanism %q has no KEDA equivalent (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, GSSAPI, OAUTHBEARER)" .Values.kafka.sasl.mechanism) }}
{{- end }}
{{- get $map $m }}
{{- end }}

{{- define "clevertap-consumer.usesSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{- define "clevertap-consumer.usesTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") }}true{{ end }}
{{- end }}

{{/*
Checks that no single schema rule can express. Rendered by the workload template so that a bad
combination fails `helm install`/`helm template` with a message naming the values.
*/}}
{{- define "clevertap-consumer.validate" -}}
{{- if not .Values.kafka.bootstrapServers }}
{{- fail "kafka.bootstrapServers is required (KAFKA_BOOTSTRAP_SERVERS)" }}
{{- end }}
{{- if not .Values.kafka.topics }}
{{- fail "kafka.topics needs at least one topic (KAFKA_TOPICS)" }}
{{- end }}
{{- if not .Values.destinations }}
{{- fail "destinations needs at least one CleverTap destination" }}
{{- end }}
{{- if and .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}
{{- fail "autoscaling.hpa.enabled and autoscaling.keda.enabled are mutually exclusive: KEDA creates and drives its own HPA" }}
{{- end }}
{{- $grace := float64 .Values.terminationGracePeriodSeconds }}
{{- $drain := float64 .Values.flowControl.drainTimeoutSeconds }}
{{- if lt $grace (addf $drain 10) }}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be at least flowControl.drainTimeoutSeconds (%v) + 10: the pod is killed before it can drain and commit" .Values.terminationGracePeriodSeconds .Values.flowControl.drainTimeoutSeconds) }}
{{- end }}
{{- if gt (int64 .Values.workers) (int64 .Values.clevertap.maxInFlight) }}
{{- fail (printf "workers (%v) is more than clevertap.maxInFlight (%v): the workers of a pod share its request cap and each needs at least one (WORKERS, CLEVERTAP_MAX_IN_FLIGHT)" .Values.workers .Values.clevertap.maxInFlight) }}
{{- end }}
{{- if and .Values.kafka.staticMembership.enabled (ne .Values.kind "StatefulSet") }}
{{- fail "kafka.staticMembership.enabled needs kind: StatefulSet. With a Deployment every new pod has a new name, so each rollout leaves ghost static members whose partitions stall until kafka.sessionTimeoutMs expires" }}
{{- end }}
{{- if and (include "clevertap-consumer.usesSasl" .) (not .Values.kafka.sasl.mechanism) }}
{{- fail (printf "kafka.securityProtocol is %s: set kafka.sasl.mechanism" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and .Values.kafka.sasl.mechanism (not (include "clevertap-consumer.usesSasl" .)) }}
{{- fail (printf "kafka.sasl.mechanism is set but kafka.securityProtocol is %s: use SASL_PLAINTEXT or SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and .Values.kafka.tls.existingSecret (not (include "clevertap-consumer.usesTls" .)) }}
{{- fail (printf "kafka.tls.existingSecret is set but kafka.securityProtocol is %s: use SSL or SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- $oauth := .Values.kafka.sasl.oauthbearer }}
{{- if and (eq (upper .Values.kafka.sasl.mechanism) "OAUTHBEARER") (not $oauth.method) }}
{{- fail "kafka.sasl.mechanism is OAUTHBEARER: set kafka.sasl.oauthbearer.method (oidc or aws_msk_iam)" }}
{{- end }}
{{- if and $oauth.method (ne (upper .Values.kafka.sasl.mechanism) "OAUTHBEARER") }}
{{- fail (printf "kafka.sasl.oauthbearer.method is %s: set kafka.sasl.mechanism to OAUTHBEARER" $oauth.method) }}
{{- end }}
{{- if eq $oauth.method "oidc" }}
{{- if or (not $oauth.tokenEndpointUrl) (not $oauth.clientId) (not (or $oauth.clientSecret $oauth.existingSecret)) }}
{{- fail "kafka.sasl.oauthbearer.method oidc needs tokenEndpointUrl, clientId, and clientSecret or existingSecret" }}
{{- end }}
{{- end }}
{{- if eq $oauth.method "aws_msk_iam" }}
{{- if not $oauth.awsRegion }}
{{- fail "kafka.sasl.oauthbearer.method aws_msk_iam needs kafka.sasl.oauthbearer.awsRegion" }}
{{- end }}
{{- if ne .Values.kafka.securityProtocol "SASL_SSL" }}
{{- fail "kafka.sasl.oauthbearer.method aws_msk_iam needs kafka.securityProtocol SASL_SSL" }}
{{- end }}
{{- end }}
{{- if and $oauth.method .Values.autoscaling.keda.enabled }}
{{- fail "autoscaling.keda.enabled with kafka.sasl.oauthbearer: configure KEDA's Kafka scaler authentication yourself (its OAUTHBEARER/MSK IAM settings differ); use autoscaling.hpa instead here" }}
{{- end }}
{{- if and .Values.kafka.tls.clientCertificate.existingSecret (not (include "clevertap-consumer.usesTls" .)) }}
{{- fail (printf "kafka.tls.clientCertificate.existingSecret is set but kafka.securityProtocol is %s: use SSL or SASL_SSL" .Values.kafka.securityProtocol) }}
{{- end }}
{{- if and .Values.schemaRegistry.tls.existingSecret (not (hasPrefix "https://" .Values.schemaRegistry.url)) }}
{{- fail "schemaRegistry.tls.existingSecret needs an https:// schemaRegistry.url" }}
{{- end }}
{{- if and .Values.autoscaling.keda.limitToPartitionsWithLag (ne (len .Values.kafka.topics) 1) }}
{{- fail "autoscaling.keda.limitToPartitionsWithLag needs exactly one topic in kafka.topics" }}
{{- end }}
{{- if and .Values.autoscaling.keda.limitToPartitionsWithLag .Values.autoscaling.keda.allowIdleConsumers }}
{{- fail "autoscaling.keda.limitToPartitionsWithLag and allowIdleConsumers cannot both be true" }}
{{- end }}
{{- if gt (int .Values.autoscaling.hpa.minReplicas) (int .Values.autoscaling.hpa.maxReplicas) }}
{{- fail "autoscaling.hpa.minReplicas must not exceed maxReplicas" }}
{{- end }}
{{- if gt (int .Values.autoscaling.keda.minReplicaCount) (int .Values.autoscaling.keda.maxReplicaCount) }}
{{- fail "autoscaling.keda.minReplicaCount must not exceed maxReplicaCount" }}
{{- end }}
{{- $_ := include "clevertap-consumer.passcodes" . }}
{{- end }}

{{- define "clevertap-consumer.autoscaled" -}}
{{- if or .Values.autoscaling.hpa.enabled .Values.autoscaling.keda.enabled }}true{{ end }}
{{- end }}

{{- define "clevertap-consumer.probeTimings" -}}
initialDelaySeconds: {{ .initialDelaySeconds }}
periodSeconds: {{ .periodSeconds }}
timeoutSeconds: {{ .timeoutSeconds }}
failureThreshold: {{ .failureThreshold }}
successThreshold: {{ .successThreshold }}
{{- end }}
