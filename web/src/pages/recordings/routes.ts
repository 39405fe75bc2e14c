// The dashboard's pages for recordings: list, replay, watch live.
import type { PageSpec } from '../../pages.js';

export const RECORDING_PAGES: readonly PageSpec[] = [
  { path: '/recordings', title: 'Recordings', nav: 'Recordings', admin: true, load: () => import('./recordings.js').then((m) => m.RecordingsPage) },
  { path: '/recordings/:id', title: 'Recording', admin: true, load: () => import('./recording.js').then((m) => m.RecordingPage) },
];
