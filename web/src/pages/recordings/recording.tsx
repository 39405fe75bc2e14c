// `/recordings/:id`: one recording's details and the asciinema player: a finished recording plays
// the streamed cast file (seek on the player's bar, jump buttons, speed); one in progress is
// watched live through the cast's server-sent-events form until the session ends.
import 'asciinema-player/dist/bundle/asciinema-player.css';
import './recordings.css';
import { create } from 'asciinema-player';
import type { Player, UrlSource } from 'asciinema-player';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { CastFormat, RecordingView } from '../../../../src/control/recording-types.js';
import type { PageProps } from '../../pages.js';
import { query } from '../../api.js';
import { formatBytes, formatDuration, formatTimestamp } from '../../lib/format.js';
import { formatOffset } from '../../lib/recording-filters.js';
import { Link, useLocation } from '../../router.js';
import { Page, Problem, Progress, useResource } from '../../ui.js';

const SPEEDS = [0.5, 1, 2, 4, 8] as const;
const JUMP_SECONDS = 10;
const SSE: CastFormat = 'sse';

export function RecordingPage({ params }: PageProps) {
  const id = params.id ?? '';
  const { search } = useLocation();
  const recording = useResource<RecordingView>(`/api/v1/recordings/${encodeURIComponent(id)}`);
  const r = recording.data;
  const startAt = Number(search.get('t') ?? '0');
  return (
    <Page title={r ? `${r.email} on ${r.socket}` : 'Recording'} actions={<Link href="/recordings">All recordings</Link>}>
      <Progress active={recording.loading} />
      <Problem error={recording.error} />
      {r ? (
        <>
          <Details recording={r} />
          <Replay key={r.id} recording={r} startAt={Number.isFinite(startAt) && startAt > 0 ? startAt : 0} />
        </>
      ) : null}
    </Page>
  );
}

function Details({ recording: r }: { recording: RecordingView }) {
  const live = r.endedAt === null;
  return (
    <dl class="recording-details panel">
      <dt>User</dt><dd>{r.email}</dd>
      <dt>Socket</dt><dd>{r.socket}</dd>
      <dt>Login</dt><dd>{r.login}</dd>
      <dt>What</dt><dd class="mono">{r.kind === 'shell' ? 'shell' : r.kind === 'database' ? `database ${r.command}` : r.command}</dd>
      <dt>Started</dt><dd>{formatTimestamp(r.startedAt)}</dd>
      <dt>Length</dt><dd>{live ? <span class="badge live">LIVE</span> : formatDuration(Date.parse(r.endedAt!) - Date.parse(r.startedAt))}</dd>
      <dt>Size</dt><dd>{formatBytes(r.bytes)}{r.truncated ? ' (truncated)' : ''}</dd>
      {!live ? <><dt>Ended</dt><dd>{r.endReason || '—'}{r.exitStatus !== null ? ` · exit ${r.exitStatus}` : ''}</dd></> : null}
      <dt>Connection</dt><dd class="mono">{r.connectionId}</dd>
    </dl>
  );
}

/**
 * The cast for the player. A live one is followed over server-sent events with no buffering, so
 * each line shows as it arrives (the player's `eventsource` driver and `bufferTime`, which its
 * typings leave out).
 */
function sourceOf(r: RecordingView): UrlSource {
  const cast = `/api/v1/recordings/${encodeURIComponent(r.id)}/cast`;
  if (r.endedAt !== null) return { url: cast };
  return { driver: 'eventsource', url: `${cast}${query({ follow: 1, format: SSE })}`, bufferTime: 0 } as UrlSource;
}

function Replay({ recording, startAt }: { recording: RecordingView; startAt: number }) {
  const live = recording.endedAt === null;
  const host = useRef<HTMLDivElement>(null);
  const player = useRef<Player>();
  const [speed, setSpeed] = useState(1);
  const [at, setAt] = useState(startAt);
  useEffect(() => {
    if (!host.current) return;
    const created = create(sourceOf(recording), host.current, {
      autoPlay: true, speed, idleTimeLimit: live ? undefined : 2, fit: 'width', terminalFontSize: 'small',
      ...(live ? {} : { startAt: player.current ? player.current.getCurrentTime() : startAt }),
    });
    player.current = created;
    return () => created.dispose();
  }, [recording, speed]);
  useEffect(() => {
    const timer = setInterval(() => setAt(player.current?.getCurrentTime() ?? 0), 500);
    return () => clearInterval(timer);
  }, []);
  const jump = (delta: number) => void player.current?.seek(Math.max(0, (player.current.getCurrentTime() ?? 0) + delta));
  return (
    <section class="replay" aria-label={live ? 'Live session' : 'Player'}>
      {live ? <p class="notice">Watching live, read-only: new output appears as it is typed.</p> : null}
      <div class="player" ref={host} data-testid="player" />
      {live ? null : (
        <div class="player-controls">
          <button type="button" onClick={() => jump(-JUMP_SECONDS)} aria-label={`Back ${JUMP_SECONDS} seconds`}>−{JUMP_SECONDS} s</button>
          <button type="button" onClick={() => jump(JUMP_SECONDS)} aria-label={`Forward ${JUMP_SECONDS} seconds`}>+{JUMP_SECONDS} s</button>
          <label class="inline">Speed
            <select value={String(speed)} onChange={(e) => setSpeed(Number((e.currentTarget as HTMLSelectElement).value))}>
              {SPEEDS.map((s) => <option key={s} value={String(s)}>{s}×</option>)}
            </select>
          </label>
          <span class="muted mono" aria-label="Position">{formatOffset(at)}</span>
          <a class="button" href={`/api/v1/recordings/${encodeURIComponent(recording.id)}/cast`} download={`${recording.id}.cast`}>Download .cast</a>
        </div>
      )}
    </section>
  );
}
