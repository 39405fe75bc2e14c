// The socket form, for creating one (name and type too) and for editing one: upstream, tags,
// description, sign-in and its allow-lists, and input recording for ssh sockets. The body it
// builds is the API's own type; the API's problems appear under the fields they name.
import { useState } from 'preact/hooks';
import type { ApiError } from '../../api.js';
import type { CreateSocketBody, SocketType, SocketView, UpdateSocketBody } from '../../../../src/control/inventory-types.js';
import { formatTags, parseList, parseTags } from '../../lib/inventory.js';
import { FieldError } from './parts.js';

const TYPES: readonly { value: SocketType; label: string }[] = [
  { value: 'http', label: 'http — a web app' },
  { value: 'https', label: 'https — a web app on TLS' },
  { value: 'tls', label: 'tls — any TCP service, mutual TLS' },
  { value: 'ssh', label: 'ssh — managed SSH, recorded' },
];

interface Draft {
  name: string;
  type: SocketType;
  upstream: string;
  description: string;
  tags: string;
  cloudauth: boolean;
  domains: string;
  addresses: string;
  recordInput: boolean;
}

function draftOf(socket: SocketView | undefined): Draft {
  return {
    name: socket?.name ?? '', type: socket?.type ?? 'http', upstream: socket?.upstream ?? '', description: socket?.description ?? '',
    tags: socket ? formatTags(socket.tags) : '', cloudauth: socket?.auth.cloudauth ?? false,
    domains: socket?.auth.allowedEmailDomains.join(', ') ?? '', addresses: socket?.auth.allowedEmailAddresses.join(', ') ?? '', recordInput: socket?.recordInput ?? false,
  };
}

type Submit<B> = (body: B) => Promise<unknown>;

/** `socket` absent: the create form; present: its edit form. */
export function SocketForm(props: { socket?: undefined; onSubmit: Submit<CreateSocketBody>; onCancel?: () => void; error: ApiError | undefined; pending: boolean } | { socket: SocketView; onSubmit: Submit<UpdateSocketBody>; onCancel?: () => void; error: ApiError | undefined; pending: boolean }) {
  const [draft, setDraft] = useState<Draft>(() => draftOf(props.socket));
  const [tagErrors, setTagErrors] = useState<string[]>([]);
  const set = <K extends keyof Draft>(key: K) => (e: Event) => {
    const target = e.currentTarget as HTMLInputElement;
    setDraft((d) => ({ ...d, [key]: (target.type === 'checkbox' ? target.checked : target.value) as Draft[K] }));
  };
  const creating = props.socket === undefined;
  const submit = (e: Event) => {
    e.preventDefault();
    const { tags, errors } = parseTags(draft.tags);
    setTagErrors(errors);
    if (errors.length > 0) return;
    const domains = parseList(draft.domains);
    const addresses = parseList(draft.addresses);
    const common = {
      upstream: draft.upstream.trim() || null,
      description: draft.description,
      tags,
      cloudauth: draft.cloudauth || domains.length > 0 || addresses.length > 0,
      allowed_email_domains: domains,
      allowed_email_addresses: addresses,
      ...(draft.type === 'ssh' ? { record_input: draft.recordInput } : {}),
    };
    if (props.socket === undefined) void props.onSubmit({ name: draft.name.trim(), type: draft.type, ...common });
    else void props.onSubmit({ ...(draft.type !== props.socket.type ? { type: draft.type } : {}), ...common });
  };
  const { error } = props;
  return (
    <form class="inventory-form" onSubmit={submit} aria-label={creating ? 'Create socket' : 'Edit socket'}>
      {creating ? (
        <label>Name
          <input name="name" value={draft.name} onInput={set('name')} required placeholder="grafana" aria-describedby="error-name" />
          <FieldError error={error} field="name" />
        </label>
      ) : null}
      <label>Type
        <select name="type" value={draft.type} onChange={set('type')}>
          {TYPES.map((t) => <option key={t.value} value={t.value}>{t.label}</option>)}
        </select>
        <FieldError error={error} field="type" />
      </label>
      <label>Upstream target
        <input name="upstream" value={draft.upstream} onInput={set('upstream')} placeholder={draft.type === 'http' || draft.type === 'https' ? 'http://127.0.0.1:3000' : 'tcp://127.0.0.1:22'} />
        <span class="muted">what the connector dials, beside the service</span>
        <FieldError error={error} field="upstream" />
      </label>
      <label>Tags
        <input name="tags" value={draft.tags} onInput={set('tags')} placeholder="env=prod, team=ops" aria-describedby="tag-errors" />
        {tagErrors.length > 0 ? <span class="field-error" id="tag-errors" role="alert">{tagErrors.join('; ')}</span> : <FieldError error={error} field="tags" />}
      </label>
      <label class="wide">Description
        <input name="description" value={draft.description} onInput={set('description')} />
      </label>
      {/* A tls socket always asks for a Postern client certificate (src/policy/socket-auth.ts): the checkbox would change nothing. */}
      {draft.type === 'tls'
        ? <p class="muted wide">Every connection needs a Postern client certificate. With both allow-lists empty, any active user may connect; otherwise only those listed and those a policy allows.</p>
        : <label class="checkbox"><input type="checkbox" name="cloudauth" checked={draft.cloudauth} onChange={set('cloudauth')} />Require sign-in</label>}
      <label>Allowed email domains
        <input name="domains" value={draft.domains} onInput={set('domains')} placeholder="corp.example" />
        <FieldError error={error} field="allowed_email_domains" />
      </label>
      <label>Allowed email addresses
        <input name="addresses" value={draft.addresses} onInput={set('addresses')} placeholder="ana@corp.example, joe@corp.example" />
        <FieldError error={error} field="allowed_email_addresses" />
      </label>
      {draft.type === 'ssh' ? <label class="checkbox"><input type="checkbox" name="record_input" checked={draft.recordInput} onChange={set('recordInput')} />Recordings keep keystrokes too</label> : null}
      <div class="buttons">
        <button type="submit" class="primary" disabled={props.pending}>{creating ? 'Create socket' : 'Save changes'}</button>
        {props.onCancel ? <button type="button" onClick={props.onCancel}>Cancel</button> : null}
      </div>
    </form>
  );
}
