// Validate custom resources against their CRD schemas with @kubernetes-models/*.
//
//   node validate-crds.mjs NODE_MODULES_DIR < manifests.json
//
// stdin: a JSON array of manifests. stdout: a JSON array, one entry per manifest:
// {kind, name, errors: [string]}; a kind this script has no schema for is an error too, so a
// new CRD in the chart cannot go unchecked. Exit 0 even when manifests are invalid (the caller
// asserts); non-zero only when the script itself cannot run.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modulesDir = process.argv[2];
if (!modulesDir) {
  console.error("usage: node validate-crds.mjs NODE_MODULES_DIR < manifests.json");
  process.exit(2);
}

const MODELS = {
  "monitoring.coreos.com/v1/ServiceMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor.js",
  "monitoring.coreos.com/v1/PodMonitor": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor.js",
  "monitoring.coreos.com/v1/PrometheusRule": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule.js",
  "keda.sh/v1alpha1/ScaledObject": "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject.js",
  "keda.sh/v1alpha1/TriggerAuthentication": "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication.js",
};

const manifests = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const manifest of manifests) {
  const key = `${manifest.apiVersion}/${manifest.kind}`;
  const name = manifest.metadata?.name ?? "";
  const file = MODELS[key];
  if (!file) {
    results.push({ kind: key, name, errors: [`no schema for ${key}`] });
    continue;
  }
  const module = await import(pathToFileURL(join(modulesDir, file)).href);
  const Model = module[manifest.kind];
  const errors = [];
  try {
    new Model(manifest).validate();
  } catch (err) {
    errors.push(String(err.message ?? err));
  }
  results.push({ kind: key, name, errors });
}
process.stdout.write(JSON.stringify(results));
