// The store's contract for terminal recordings (rows and their compressed chunks), apart from
// types.ts so each stays short; types.ts re-exports it.

/** `database`: a PostgreSQL session's transcript (statements and results, as psql would show them). */
export type RecordingKind = 'shell' | 'exec' | 'database';

/** One recorded terminal session (an SSH shell, one exec, or a database session's transcript). Its events are in chunks. */
export interface RecordingRecord {
  /** `rec_…` */
  readonly id: string;
  readonly connectionId: string;
  readonly sessionId: string;
  readonly socket: string;
  /** Lower-cased. */
  readonly email: string;
  readonly login: string;
  readonly kind: RecordingKind;
  /** The exec's command line, a database session's database; '' for a shell. */
  readonly command: string;
  readonly title: string;
  readonly width: number;
  readonly height: number;
  readonly term: string;
  readonly startedAt: string;
  /** null while the session runs (or when its edge died before it ended). */
  readonly endedAt: string | null;
  readonly exitStatus: number | null;
  /** Terminal bytes recorded so far (before compression). */
  readonly bytes: number;
  /** Events are missing: the size cap was reached, or the store was too slow and some were dropped. */
  readonly truncated: boolean;
  readonly endReason: string;
  /** The recorder's last write (chunk or heartbeat); a live recording whose writer died stops moving. */
  readonly updatedAt: string;
}

export interface NewRecording {
  /** Given by the recorder (it hands the id out before the row is written); `rec_…`. */
  readonly id: string;
  readonly connectionId: string;
  readonly sessionId?: string;
  readonly socket: string;
  readonly email: string;
  readonly login: string;
  readonly kind: RecordingKind;
  readonly command?: string;
  readonly title?: string;
  readonly width: number;
  readonly height: number;
  readonly term?: string;
  readonly startedAt: string;
}

/** A piece of a recording: asciicast v2 event lines (each ending in \n), gzip-compressed on their own. */
export interface RecordingChunkRecord {
  readonly recordingId: string;
  /** 0, 1, 2… in recording order (gaps where chunks were dropped). */
  readonly seq: number;
  readonly data: Buffer;
  readonly createdAt: string;
}

export interface RecordingEnd {
  readonly endedAt: string;
  readonly exitStatus?: number | null;
  readonly reason?: string;
  readonly bytes: number;
  readonly truncated: boolean;
}

export interface RecordingFilter {
  readonly email?: string;
  readonly socket?: string;
  readonly connectionId?: string;
  /** ISO 8601 bounds on the start: since inclusive, until exclusive. */
  readonly since?: string;
  readonly until?: string;
  /** Only recordings not ended yet (true) or only ended ones (false). */
  readonly live?: boolean;
  /** Paging: recordings listed after this one (newest first). */
  readonly before?: string;
  /** Default 50, at most 500. */
  readonly limit?: number;
}

/** Recordings record no change (they never reach snapshots). */
export interface RecordingRepo {
  /** Throws 'conflict' when the id exists. */
  create(input: NewRecording): Promise<RecordingRecord>;
  /**
   * Stores one chunk and the recording's progress. Idempotent per (id, seq): a retried write keeps
   * the first. Throws 'not_found' for an unknown recording, 'conflict' for an ended one.
   */
  appendChunk(id: string, chunk: { seq: number; data: Uint8Array; bytes: number; truncated: boolean }): Promise<void>;
  /** A live recording's heartbeat when there was nothing to write. */
  touch(id: string): Promise<void>;
  /** Ends a recording; a second end changes nothing. Throws 'not_found' when absent. */
  finish(id: string, end: RecordingEnd): Promise<void>;
  get(id: string): Promise<RecordingRecord | undefined>;
  /** Newest first. */
  list(filter?: RecordingFilter): Promise<RecordingRecord[]>;
  /** Chunks with seq > afterSeq in order (default at most 100, at most 1000). */
  chunks(id: string, afterSeq: number, limit?: number): Promise<RecordingChunkRecord[]>;
}
