// The admins' start page: how many sockets are online, connectors and their tunnels, live
// connections, denies in the last hour, and a small chart of requests and denies over time.
import { useEffect } from 'preact/hooks';
import type { ComponentChildren } from 'preact';
import type { OverviewView, SeriesBucket } from '../../../../src/control/live-types.js';
import { Link } from '../../router.js';
import { Page, Problem, Progress, useResource } from '../../ui.js';
import { formatCount, formatTimestamp } from '../../lib/format.js';
import { chartGeometry } from '../../lib/live.js';
import './live.css';

/** The figures move with traffic; a glance every quarter minute is enough for counts (live sessions stream). */
const REFRESH_MS = 15_000;
const CHART_WIDTH = 600;
const CHART_HEIGHT = 140;

export function OverviewPage() {
  const overview = useResource<OverviewView>('/api/v1/overview');
  const { reload } = overview;
  useEffect(() => {
    const timer = setInterval(reload, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);
  const view = overview.data;
  return (
    <Page title="Overview">
      <Progress active={overview.loading && !view} />
      <Problem error={overview.error} />
      {view ? <Figures view={view} /> : null}
    </Page>
  );
}

function Figures({ view }: { view: OverviewView }) {
  return (
    <>
      <div class="cards">
        <Card label="Sockets online" href="/sockets" value={`${formatCount(view.sockets.online)} / ${formatCount(view.sockets.total)}`}>
          {view.sockets.offline > 0 ? <span class="badge bad">{formatCount(view.sockets.offline)} offline</span> : <span class="badge ok">all online</span>}
        </Card>
        <Card label="Connectors" href="/connectors" value={`${formatCount(view.connectors.connected)} / ${formatCount(view.connectors.total)}`}>
          <span class="muted">{formatCount(view.connectors.tunnels)} tunnel{view.connectors.tunnels === 1 ? '' : 's'}</span>
        </Card>
        <Card label="Live connections" href="/sessions" value={formatCount(view.liveConnections)} />
        <Card label="Denies in the last hour" href="/audit?decision=deny" value={formatCount(view.deniesLastHour)} />
      </div>
      <section class="panel" aria-label="Requests and denies">
        <h2>Requests and denies, last {Math.round((view.series.buckets.length * view.series.bucketMinutes) / 60)} hours</h2>
        <Chart buckets={view.series.buckets} bucketMinutes={view.series.bucketMinutes} />
      </section>
      {view.connectors.top.length > 0 ? (
        <section class="panel" aria-label="Connectors and tunnels">
          <h2>Connectors</h2>
          <table>
            <thead><tr><th>Connector</th><th>Id</th><th class="num">Tunnels</th></tr></thead>
            <tbody>
              {view.connectors.top.map((c) => (
                <tr key={c.id}><td>{c.name}</td><td class="mono">{c.id}</td><td class="num">{c.tunnels === 0 ? <span class="badge bad">offline</span> : c.tunnels}</td></tr>
              ))}
            </tbody>
          </table>
        </section>
      ) : null}
    </>
  );
}

function Card({ label, value, href, children }: { label: string; value: string; href: string; children?: ComponentChildren }) {
  return (
    <section class="card" aria-label={label}>
      <div class="label">{label}</div>
      <div class="value">{value}</div>
      <div class="card-foot">{children}<Link href={href}>View</Link></div>
    </section>
  );
}

function Chart({ buckets, bucketMinutes }: { buckets: readonly SeriesBucket[]; bucketMinutes: number }) {
  const chart = chartGeometry(buckets, CHART_WIDTH, CHART_HEIGHT);
  const allowed = buckets.reduce((n, b) => n + b.allow, 0);
  const denied = buckets.reduce((n, b) => n + b.deny, 0);
  const label = `${allowed} allowed and ${denied} denied in ${buckets.length} buckets of ${bucketMinutes} minutes`;
  return (
    <figure class="chart">
      <svg viewBox={`-4 -6 ${CHART_WIDTH + 8} ${CHART_HEIGHT + 12}`} preserveAspectRatio="none" role="img" aria-label={label}>
        <line class="axis" x1="0" y1={CHART_HEIGHT} x2={CHART_WIDTH} y2={CHART_HEIGHT} />
        <line class="grid" x1="0" y1="0" x2={CHART_WIDTH} y2="0" />
        <polyline class="allow" points={chart.allow} />
        <polyline class="deny" points={chart.deny} />
      </svg>
      {buckets[0] ? <div class="chart-x muted"><span>{formatTimestamp(buckets[0].start).slice(11, 16)}</span><span>now</span></div> : null}
      <figcaption>
        <span class="key allow">allowed {formatCount(allowed)}</span>
        <span class="key deny">denied {formatCount(denied)}</span>
        <span class="muted">top of the chart: {formatCount(chart.top)} per {bucketMinutes} min</span>
      </figcaption>
    </figure>
  );
}
