// The list of policies: what each governs, how many rules, its version and when it last changed,
// a page at a time from the server's cursor (kept in the URL, so a link shows the same page).
import type { PolicyListAnswer, PolicyView } from '../../../../src/control/policy-types.js';
import { query } from '../../api.js';
import { formatRelative } from '../../lib/format.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useResource } from '../../ui.js';
import './policies.css';

const PAGE_SIZE = 50;

function governs(p: PolicyView): string {
  const { sockets, tags } = p.document as { sockets?: string[]; tags?: Record<string, string> };
  if (sockets) return sockets.join(', ');
  if (tags) return Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(', ');
  return 'every socket in its namespace';
}

export function PoliciesPage() {
  const { search, navigate } = useLocation();
  const cursor = search.get('cursor') ?? undefined;
  const list = useResource<PolicyListAnswer>(`/api/v1/policies${query({ cursor, limit: PAGE_SIZE })}`);
  return (
    <Page title="Policies" actions={<Link class="button primary" href="/policies/new">New policy</Link>}>
      <Progress active={list.loading} />
      <Problem error={list.error} />
      {list.data ? (
        list.data.policies.length === 0 && !cursor ? <p class="notice">No policies yet: nothing is allowed until one is. <Link href="/policies/new">Write the first one</Link>.</p> : (
          <table>
            <thead><tr><th>Policy</th><th>Governs</th><th class="num">Rules</th><th class="num">Version</th><th>Updated</th></tr></thead>
            <tbody>
              {list.data.policies.map((p) => (
                <tr key={p.ref}>
                  <td><Link href={`/policies/${encodeURIComponent(p.ref)}`}>{p.ref}</Link></td>
                  <td>{governs(p)}{p.coverage.unknown.length ? <span class="badge bad" title="these sockets do not exist (yet)">{p.coverage.unknown.length} unknown</span> : null}</td>
                  <td class="num">{(p.document.rules as unknown[] | undefined)?.length ?? 0}</td>
                  <td class="num">{p.version}</td>
                  <td title={p.updatedAt}>{formatRelative(p.updatedAt, new Date())}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )
      ) : null}
      <div class="pager">
        {cursor ? <button type="button" onClick={() => navigate('/policies')}>First page</button> : null}
        {list.data?.next ? <button type="button" onClick={() => navigate(`/policies${query({ cursor: list.data!.next })}`)}>Next page</button> : null}
      </div>
    </Page>
  );
}
