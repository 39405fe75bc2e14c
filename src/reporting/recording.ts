// The contract between what is recorded (managed SSH sessions, database sessions' transcripts)
// and where recordings go: a producer starts a recording and hands it terminal events as they
// happen; the sink streams them into the store as asciicast v2 in compressed chunks. Nothing
// here may block the producer: a slow store delays the recording, never the user's keystrokes.

/** What a recording is of; `title` and `term` go into the asciicast header. */
export interface RecordingMeta {
  /** The live connection it belongs to (`sessions kill` / `sessions watch` take this id). */
  readonly connectionId: string;
  /** The sign-in session, when there is one. */
  readonly sessionId?: string;
  readonly socket: string;
  readonly email: string;
  /** The upstream login (SSH user, database role). */
  readonly login: string;
  /** `shell`: an interactive session; `exec`: one command (`command` holds its line); `database`: a database session's transcript (`command` holds the database). */
  readonly kind: 'shell' | 'exec' | 'database';
  readonly command?: string;
  readonly width: number;
  readonly height: number;
  /** TERM of the client, e.g. xterm-256color. */
  readonly term: string;
  readonly title: string;
  readonly startedAt: Date;
  /** Whether `input` events are kept (the socket's `record_input`). */
  readonly recordInput: boolean;
}

/** One recording in progress. Every method returns at once; events keep their order. */
export interface RecordingHandle {
  readonly id: string;
  /** Bytes the user's terminal was shown (asciicast `o`). */
  output(data: Buffer, at?: Date): void;
  /** Bytes the user typed (asciicast `i`; dropped unless `recordInput`). */
  input(data: Buffer, at?: Date): void;
  /** The terminal was resized (asciicast `r`, "WxH"). */
  resize(width: number, height: number, at?: Date): void;
  /** The session ended; the rest is flushed. `exitStatus` for exec recordings. */
  end(details?: { reason?: string; exitStatus?: number }, at?: Date): void;
}

export interface RecordingSink {
  start(meta: RecordingMeta): RecordingHandle;
}
