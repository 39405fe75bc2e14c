// Users: every account with its groups and state; create, edit groups or disable, a one-time
// invitation link to set a password, delete after a confirmation. Groups are attributes of
// users (there is no group entity), so the groups panel derives each group's members from them.
import { useState } from 'preact/hooks';
import { api } from '../../api.js';
import type { ApiError } from '../../api.js';
import type { CreateUserBody, InviteView, UpdateUserBody, UserView } from '../../../../src/control/inventory-types.js';
import { groupsOf, parseList } from '../../lib/inventory.js';
import { formatTimestamp } from '../../lib/format.js';
import { CopyButton, Page, Problem, Progress, useAction } from '../../ui.js';
import { ConfirmButton, FieldError, LoadMore, usePagedList } from './parts.js';

export function UsersPage() {
  const list = usePagedList<UserView>('/api/v1/users', 'users');
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<string>();
  const [invite, setInvite] = useState<{ email: string; link: InviteView }>();
  const create = useAction((body: CreateUserBody) => api<UserView>('POST', '/api/v1/users', body));
  const update = useAction((id: string, body: UpdateUserBody) => api<UserView>('PATCH', `/api/v1/users/${encodeURIComponent(id)}`, body));
  const remove = useAction((id: string) => api<void>('DELETE', `/api/v1/users/${encodeURIComponent(id)}`).then(() => true));
  const inviteOf = useAction((id: string) => api<InviteView>('POST', `/api/v1/users/${encodeURIComponent(id)}/invite`));
  const groups = groupsOf(list.rows);
  const onInvite = async (user: UserView) => {
    const link = await inviteOf.run(user.id);
    if (link) setInvite({ email: user.email, link });
  };
  return (
    <Page title="Users and groups" actions={creating ? null : <button type="button" class="primary" onClick={() => { create.clear(); setCreating(true); }}>Create user</button>}>
      {creating ? (
        <div class="panel">
          <h2>Create user</h2>
          <Problem error={create.error} />
          <UserForm error={create.error} pending={create.pending} onCancel={() => setCreating(false)} onSubmit={async (body) => {
            if (await create.run(body as CreateUserBody)) {
              setCreating(false);
              list.reload();
            }
          }} />
        </div>
      ) : null}
      {invite ? (
        <div class="panel once" role="region" aria-label="Invitation link">
          <h2>Invitation for {invite.email}</h2>
          <p class="warning">Send this link to them: it sets their password once, until {formatTimestamp(invite.link.expiresAt)}. It will not be shown again.</p>
          <pre class="block">{invite.link.url}</pre>
          <div class="actions"><CopyButton text={invite.link.url} label="Copy link" /><button type="button" onClick={() => setInvite(undefined)}>Done</button></div>
        </div>
      ) : null}
      <Problem error={list.error ?? update.error ?? remove.error ?? inviteOf.error} />
      <Progress active={list.loading && list.rows.length === 0} label="Loading users…" />
      <table>
        <thead><tr><th>Email</th><th>Name</th><th>Groups</th><th>State</th><th>Password</th><th><span class="muted">Actions</span></th></tr></thead>
        <tbody>
          {list.rows.map((u) => editing === u.id ? (
            <tr key={u.id}><td colSpan={6}>
              <UserForm user={u} error={update.error} pending={update.pending} onCancel={() => setEditing(undefined)} onSubmit={async (body) => {
                if (await update.run(u.id, body as UpdateUserBody)) {
                  setEditing(undefined);
                  list.reload();
                }
              }} />
            </td></tr>
          ) : (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>{u.name || <span class="muted">–</span>}</td>
              <td>{u.groups.length ? <span class="tags">{u.groups.map((g) => <span key={g} class="badge">{g}</span>)}</span> : <span class="muted">–</span>}</td>
              <td>{u.disabled ? <span class="badge bad">disabled</span> : <span class="badge ok">active</span>}</td>
              <td>{u.hasPassword ? 'set' : <span class="muted">none</span>}</td>
              <td><div class="actions">
                <button type="button" onClick={() => { update.clear(); setEditing(u.id); }} aria-label={`Edit ${u.email}`}>Edit</button>
                <button type="button" onClick={() => void onInvite(u)} disabled={inviteOf.pending} aria-label={`Invitation link for ${u.email}`}>Invitation link</button>
                <ConfirmButton label="Delete" question={`Delete ${u.email} and end their sessions?`} pending={remove.pending} onConfirm={() => void remove.run(u.id).then((ok) => ok && list.reload())} />
              </div></td>
            </tr>
          ))}
          {!list.loading && list.rows.length === 0 ? <tr><td colSpan={6} class="muted">No users.</td></tr> : null}
        </tbody>
      </table>
      <LoadMore list={list} />
      <div class="panel">
        <h2>Groups</h2>
        <p class="muted">Groups are attributes of users (set here, or mapped from a sign-in provider); each group below lists the users shown above that carry it.</p>
        {groups.length === 0 ? <p class="muted">No user is in a group.</p> : (
          <table>
            <thead><tr><th>Group</th><th>Members</th></tr></thead>
            <tbody>{groups.map((g) => <tr key={g.group}><td>{g.group}</td><td>{g.members.join(', ')}</td></tr>)}</tbody>
          </table>
        )}
      </div>
    </Page>
  );
}

function UserForm({ user, error, pending, onSubmit, onCancel }: { user?: UserView; error: ApiError | undefined; pending: boolean; onSubmit: (body: CreateUserBody | UpdateUserBody) => Promise<void>; onCancel: () => void }) {
  const [email, setEmail] = useState(user?.email ?? '');
  const [name, setName] = useState(user?.name ?? '');
  const [groups, setGroups] = useState(user?.groups.join(', ') ?? '');
  const [disabled, setDisabled] = useState(user?.disabled ?? false);
  const submit = (e: Event) => {
    e.preventDefault();
    const common = { name: name.trim(), groups: parseList(groups) };
    void onSubmit(user ? { ...common, disabled } : { email: email.trim(), ...common });
  };
  return (
    <form class="inventory-form" onSubmit={submit} aria-label={user ? `Edit ${user.email}` : 'Create user'}>
      {user ? null : (
        <label>Email
          <input type="email" name="email" value={email} onInput={(e) => setEmail((e.currentTarget as HTMLInputElement).value)} required />
          <FieldError error={error} field="email" />
        </label>
      )}
      <label>Name
        <input name="name" value={name} onInput={(e) => setName((e.currentTarget as HTMLInputElement).value)} />
        <FieldError error={error} field="name" />
      </label>
      <label>Groups
        <input name="groups" value={groups} onInput={(e) => setGroups((e.currentTarget as HTMLInputElement).value)} placeholder="admins, staff" />
        <FieldError error={error} field="groups" />
      </label>
      {user ? <label class="checkbox"><input type="checkbox" name="disabled" checked={disabled} onChange={(e) => setDisabled((e.currentTarget as HTMLInputElement).checked)} />Disabled (ends their sessions)</label> : null}
      <div class="buttons">
        <button type="submit" class="primary" disabled={pending}>{user ? 'Save' : 'Create user'}</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}
