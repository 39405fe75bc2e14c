// Finding text in a recording: what the user typed (`i`) and what their terminal showed (`o`)
// are searched apart, escape sequences removed and case ignored, across event boundaries (typed
// text arrives one key per event), and the answer is the moment the first match began.

import type { CastEvent } from './asciicast.js';

export interface CastMatch {
  /** Seconds since the start of the recording at which the matching text began. */
  readonly time: number;
  readonly stream: 'input' | 'output';
  /** The text around the match, as shown (escapes removed). */
  readonly excerpt: string;
}

// CSI, OSC (ended by BEL or ST), other two-byte escapes, then the remaining control characters.
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-Z\\-_]|[\u0000-\u0009\u000b-\u001f\u007f]/g;

/** Terminal data as a person reads it: no escapes or control characters, line ends as \n. */
export function visibleText(data: string): string {
  return data.replace(/\r\n?/g, '\n').replace(ESCAPES, '');
}

const EXCERPT = 40;

/** Where the text seen so far in one direction stands: its tail and the time each part arrived. */
interface StreamState {
  text: string;
  /** Start offsets in `text` and the time of the event they came from, ascending. */
  marks: { at: number; time: number }[];
}

export class CastSearch {
  readonly #needle: string;
  readonly #streams = { i: newState(), o: newState() };

  constructor(query: string) {
    this.#needle = query.toLowerCase();
  }

  /** Feeds one event; the first match found, or undefined. */
  feed(event: CastEvent): CastMatch | undefined {
    if (event.code === 'r' || this.#needle === '') return undefined;
    const text = visibleText(event.data);
    if (text === '') return undefined;
    const state = this.#streams[event.code];
    state.marks.push({ at: state.text.length, time: event.time });
    state.text += text;
    // Lower-casing may change a string's length (rare letters); then the window is searched as is.
    const lower = state.text.toLowerCase();
    const haystack = lower.length === state.text.length ? lower : state.text;
    const index = haystack.indexOf(this.#needle);
    if (index >= 0) {
      let time = event.time;
      for (const mark of state.marks) if (mark.at <= index) time = mark.time;
      const excerpt = state.text.slice(Math.max(0, index - EXCERPT), index + this.#needle.length + EXCERPT).replace(/\n+/g, ' ').trim();
      return { time, stream: event.code === 'i' ? 'input' : 'output', excerpt };
    }
    trim(state, this.#needle.length + EXCERPT);
    return undefined;
  }
}

function newState(): StreamState {
  return { text: '', marks: [] };
}

/** Keeps only the last `keep` characters (enough for a match spanning events, and its excerpt). */
function trim(state: StreamState, keep: number): void {
  const cut = state.text.length - keep;
  if (cut <= 0) return;
  state.text = state.text.slice(cut);
  const marks = state.marks.map((m) => ({ at: m.at - cut, time: m.time }));
  // The part that began before the cut still covers the window's first characters.
  let first = 0;
  while (first + 1 < marks.length && marks[first + 1]!.at <= 0) first++;
  state.marks = marks.slice(first).map((m) => ({ at: Math.max(0, m.at), time: m.time }));
}
