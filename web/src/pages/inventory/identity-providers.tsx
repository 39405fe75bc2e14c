// Sign-in providers: OIDC, GitHub and SAML sources of sign-in; add, edit (settings merged, the
// client secret write-only: replaced or removed, never shown) and delete after a confirmation.
import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import type { ApiError } from '../../api.js';
import type { CreateProviderBody, ProviderKind, ProviderList, ProviderView, UpdateProviderBody } from '../../../../src/control/inventory-types.js';
import { parseConfigJson, providerConfigTemplate } from '../../lib/inventory.js';
import { CopyButton, Page, Problem, Progress, useAction, useResource } from '../../ui.js';
import { ConfirmButton, FieldError } from './parts.js';

const KINDS: readonly { value: ProviderKind; label: string }[] = [
  { value: 'oidc', label: 'OpenID Connect (Google, Microsoft, Okta, Keycloak…)' },
  { value: 'github', label: 'GitHub' },
  { value: 'saml', label: 'SAML 2.0' },
];

const pretty = (config: Readonly<Record<string, unknown>>) => JSON.stringify(config, null, 2);

export function IdentityProvidersPage() {
  const providers = useResource<ProviderList>('/api/v1/identity-providers');
  const [adding, setAdding] = useState(false);
  const [editing, setEditing] = useState<string>();
  const create = useAction((body: CreateProviderBody) => api<ProviderView>('POST', '/api/v1/identity-providers', body));
  const update = useAction((name: string, body: UpdateProviderBody) => api<ProviderView>('PATCH', `/api/v1/identity-providers/${encodeURIComponent(name)}`, body));
  const remove = useAction((name: string) => api<void>('DELETE', `/api/v1/identity-providers/${encodeURIComponent(name)}`).then(() => true));
  const rows = providers.data?.providers ?? [];
  return (
    <Page title="Sign-in providers" actions={adding ? null : <button type="button" class="primary" onClick={() => { create.clear(); setAdding(true); }}>Add provider</button>}>
      <p class="muted">Local accounts (email and password) always work; these providers add single sign-in. Client secrets are write-only.</p>
      {adding ? (
        <div class="panel">
          <h2>Add provider</h2>
          <ProviderForm error={create.error} pending={create.pending} onCancel={() => setAdding(false)} onSubmit={async (body) => {
            if (await create.run(body as CreateProviderBody)) {
              setAdding(false);
              providers.reload();
            }
          }} />
        </div>
      ) : null}
      <Problem error={providers.error ?? remove.error} />
      <Progress active={providers.loading && !providers.data} />
      <table>
        <thead><tr><th>Name</th><th>Kind</th><th>Shown as</th><th>State</th><th>Secret</th><th>Redirect URI</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          {rows.map((p) => editing === p.name ? (
            <tr key={p.id}><td colSpan={7}>
              <ProviderForm provider={p} error={update.error} pending={update.pending} onCancel={() => setEditing(undefined)} onSubmit={async (body) => {
                if (await update.run(p.name, body as UpdateProviderBody)) {
                  setEditing(undefined);
                  providers.reload();
                }
              }} />
            </td></tr>
          ) : (
            <tr key={p.id}>
              <td>{p.name}</td>
              <td>{p.kind}</td>
              <td>{p.displayName}</td>
              <td>{p.disabled ? <span class="badge bad">disabled</span> : <span class="badge ok">enabled</span>}</td>
              <td>{p.hasSecret ? 'set' : <span class="muted">none</span>}</td>
              <td class="mono">{p.redirectUri} <CopyButton text={p.redirectUri} /></td>
              <td><div class="actions">
                <button type="button" onClick={() => { update.clear(); setEditing(p.name); }} aria-label={`Edit ${p.name}`}>Edit</button>
                <ConfirmButton label="Delete" question={`Remove ${p.name}? Sessions it signed in stay until revoked.`} pending={remove.pending} onConfirm={() => void remove.run(p.name).then((ok) => ok && providers.reload())} />
              </div></td>
            </tr>
          ))}
          {providers.data && rows.length === 0 ? <tr><td colSpan={7} class="muted">No providers: people sign in with local accounts.</td></tr> : null}
        </tbody>
      </table>
    </Page>
  );
}

function ProviderForm({ provider, error, pending, onSubmit, onCancel }: { provider?: ProviderView; error: ApiError | undefined; pending: boolean; onSubmit: (body: CreateProviderBody | UpdateProviderBody) => Promise<void>; onCancel: () => void }) {
  const [kind, setKind] = useState<ProviderKind>(provider?.kind ?? 'oidc');
  const [name, setName] = useState(provider?.name ?? '');
  const [displayName, setDisplayName] = useState(provider?.displayName ?? '');
  const [settings, setSettings] = useState(pretty(provider?.config ?? providerConfigTemplate('oidc')));
  const [secret, setSecret] = useState('');
  const [dropSecret, setDropSecret] = useState(false);
  const [disabled, setDisabled] = useState(provider?.disabled ?? false);
  const [settingsError, setSettingsError] = useState<string>();
  const chooseKind = (next: ProviderKind) => {
    setKind(next);
    setSettings(pretty(providerConfigTemplate(next)));
  };
  const submit = (e: Event) => {
    e.preventDefault();
    const parsed = parseConfigJson(settings);
    if ('error' in parsed) return setSettingsError(parsed.error);
    setSettingsError(undefined);
    if (!provider) {
      void onSubmit({ name: name.trim(), kind, config: parsed.config, disabled, ...(displayName.trim() ? { display_name: displayName.trim() } : {}), ...(secret ? { client_secret: secret } : {}) });
      return;
    }
    // The API merges settings: keys taken out of the text are removed with null.
    const removed = Object.fromEntries(Object.keys(provider.config).filter((k) => !(k in parsed.config)).map((k) => [k, null]));
    void onSubmit({ display_name: displayName.trim(), config: { ...removed, ...parsed.config }, disabled, ...(dropSecret ? { client_secret: null } : secret ? { client_secret: secret } : {}) });
  };
  return (
    <form class="inventory-form" onSubmit={submit} aria-label={provider ? `Edit ${provider.name}` : 'Add provider'}>
      <div class="wide"><Problem error={error} /></div>
      {provider ? null : (
        <>
          <label>Kind
            <select value={kind} onChange={(e) => chooseKind((e.currentTarget as HTMLSelectElement).value as ProviderKind)}>
              {KINDS.map((k) => <option key={k.value} value={k.value}>{k.label}</option>)}
            </select>
          </label>
          <label>Name
            <input name="name" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} required placeholder="google" />
            <FieldError error={error} field="name" />
          </label>
        </>
      )}
      <label>Shown as
        <input name="display_name" value={displayName} onInput={(e) => setDisplayName((e.currentTarget as HTMLInputElement).value)} placeholder="Google" />
      </label>
      <label>{kind === 'saml' ? 'SP private key (PEM, optional)' : 'Client secret'}
        <input type="password" name="client_secret" autoComplete="off" value={secret} onInput={(e) => setSecret((e.currentTarget as HTMLInputElement).value)} placeholder={provider?.hasSecret ? 'set: leave empty to keep it' : ''} />
      </label>
      {provider?.hasSecret ? <label class="checkbox"><input type="checkbox" checked={dropSecret} onChange={(e) => setDropSecret((e.currentTarget as HTMLInputElement).checked)} />Remove the stored secret</label> : null}
      <label class="checkbox"><input type="checkbox" checked={disabled} onChange={(e) => setDisabled((e.currentTarget as HTMLInputElement).checked)} />Disabled</label>
      <label class="wide">Settings (JSON: the {kind} provider's fields)
        <textarea name="config" rows={8} class="mono" value={settings} onInput={(e) => setSettings((e.currentTarget as HTMLTextAreaElement).value)} spellcheck={false} />
        {settingsError ? <span class="field-error" role="alert">{settingsError}</span> : <FieldError error={error} field={['config', ...Object.keys(providerConfigTemplate(kind))]} />}
      </label>
      <div class="buttons">
        <button type="submit" class="primary" disabled={pending}>{provider ? 'Save' : 'Add provider'}</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
