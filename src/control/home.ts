// The control host's landing page: where the API and its document are, until the dashboard lands.
export function renderHome(version: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>Postern</title>
<style>body{font:16px system-ui,sans-serif;max-width:42rem;margin:4rem auto;padding:0 1rem;color:#222}code{background:#eee;padding:0 .3em}</style></head>
<body><h1>Postern</h1><p>Zero-trust access to private services. This is the control plane (v${version}).</p>
<ul><li>API: <code>/api/v1</code> — <a href="/api/v1/openapi.json">OpenAPI document</a></li>
<li>CLI: <code>npx postern socket ls</code></li></ul></body></html>
`;
}
