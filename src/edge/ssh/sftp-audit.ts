// The audit trail's view of an sftp subsystem channel. The edge relays the channel's bytes
// unchanged and hands copies of both directions here; this reads SFTP v3
// (draft-ietf-secsh-filexfer-02, what OpenSSH speaks) and reports what happened: open, remove,
// rename, mkdir and rmdir once the server said yes, and per handle the bytes read and written
// when it is closed. Pure and bounded: one packet head per direction is kept, WRITE data is
// counted and skipped, and input it cannot read stops it for good, silently, without throwing.

import { PosternError } from '../../errors.js';

export type SftpOperation =
  | { readonly op: 'open'; readonly path: string; readonly write: boolean }
  | { readonly op: 'read'; readonly path: string; readonly bytes: number }
  | { readonly op: 'write'; readonly path: string; readonly bytes: number }
  | { readonly op: 'remove' | 'mkdir' | 'rmdir'; readonly path: string }
  | { readonly op: 'rename'; readonly from: string; readonly to: string };

export interface SftpAuditLimits {
  /** Open file handles followed at once (default 1024); one more stops the observer. */
  readonly maxHandles?: number;
  /** Requests awaiting their answer (default 1024); one more stops the observer. */
  readonly maxPending?: number;
}

/** OpenSSH's own limit (SFTP_MAX_MSG_LENGTH): no conforming peer sends a longer packet. */
const MAX_PACKET = 256 * 1024;
/** The draft caps handles at 256 bytes. */
const MAX_HANDLE = 256;
/** PATH_MAX: a longer path cannot succeed on the server, so only its start is kept. */
const MAX_PATH = 4096;

const INIT = 1;
const VERSION = 2;
const OPEN = 3;
const CLOSE = 4;
const READ = 5;
const WRITE = 6;
const REMOVE = 13;
const MKDIR = 14;
const RMDIR = 15;
const RENAME = 18;
const EXTENDED = 200;
const STATUS = 101;
const HANDLE = 102;
const DATA = 103;

/** Requests of v3: INIT, OPEN … SYMLINK (3-20), EXTENDED. */
const isRequest = (type: number) => type === INIT || (type >= OPEN && type <= 20) || type === EXTENDED;
/** Responses of v3: VERSION, STATUS … ATTRS (101-105), EXTENDED_REPLY. */
const isResponse = (type: number) => type === VERSION || (type >= STATUS && type <= 105) || type === 201;

/** SSH_FXF_WRITE, APPEND, CREAT, TRUNC: an open that can change the file. */
const WRITE_FLAGS = 0x02 | 0x04 | 0x08 | 0x10;
/** All of a WRITE but its data: id, handle, offset, data length. */
const WRITE_HEAD = 4 + 4 + MAX_HANDLE + 8 + 4;
const SSH_FX_OK = 0;

interface HandleStats {
  readonly path: string;
  read: number;
  written: number;
}

type Pending =
  | { readonly kind: 'open'; readonly path: string; readonly write: boolean }
  | { readonly kind: 'remove' | 'mkdir' | 'rmdir'; readonly path: string }
  | { readonly kind: 'rename'; readonly from: string; readonly to: string }
  | { readonly kind: 'read' | 'close'; readonly stats: HandleStats };

/** Fields of one packet head; undefined when a field runs past its end. */
class Fields {
  private offset = 0;
  constructor(private readonly buf: Buffer) {}

  get consumed(): number {
    return this.offset;
  }

  u32(): number | undefined {
    if (this.offset + 4 > this.buf.length) return undefined;
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  skip(n: number): boolean {
    if (this.offset + n > this.buf.length) return false;
    this.offset += n;
    return true;
  }

  bytes(max = Number.POSITIVE_INFINITY): Buffer | undefined {
    const length = this.u32();
    if (length === undefined || length > max || this.offset + length > this.buf.length) return undefined;
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return value;
  }

  path(): string | undefined {
    const raw = this.bytes();
    if (raw === undefined) return undefined;
    return raw.length > MAX_PATH ? `${raw.subarray(0, MAX_PATH).toString('utf8')}…` : raw.toString('utf8');
  }
}

/**
 * One direction's packets: the length and type read, then as much of the payload as `want`
 * asks for collected (copied: the caller's chunks are not kept) and handed to `packet`, the
 * rest skipped. Either callback answers a problem sentence to stop.
 */
class Framer {
  private readonly header = Buffer.alloc(5);
  private headerFill = 0;
  private type = 0;
  private payloadLength = 0;
  private want = 0;
  private parts: Buffer[] = [];
  private got = 0;
  private skip = 0;

  constructor(
    private readonly wanted: (type: number, payloadLength: number) => number | string,
    private readonly packet: (type: number, head: Buffer, payloadLength: number) => string | undefined,
  ) {}

  /** A problem sentence when the stream cannot be read further. */
  push(chunk: Buffer): string | undefined {
    let off = 0;
    while (off < chunk.length) {
      const left = chunk.length - off;
      if (this.skip > 0) {
        const n = Math.min(this.skip, left);
        this.skip -= n;
        off += n;
      } else if (this.want > 0) {
        const n = Math.min(this.want - this.got, left);
        this.parts.push(Buffer.from(chunk.subarray(off, off + n)));
        this.got += n;
        off += n;
        if (this.got === this.want) {
          const problem = this.complete(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts));
          if (problem) return problem;
        }
      } else {
        const n = Math.min(5 - this.headerFill, left);
        chunk.copy(this.header, this.headerFill, off, off + n);
        this.headerFill += n;
        off += n;
        if (this.headerFill < 5) continue;
        this.headerFill = 0;
        const length = this.header.readUInt32BE(0);
        if (length < 1 || length > MAX_PACKET) return `packet length ${length} is outside 1 to ${MAX_PACKET}`;
        this.type = this.header[4]!;
        this.payloadLength = length - 1;
        const want = this.wanted(this.type, this.payloadLength);
        if (typeof want === 'string') return want;
        this.want = want;
        if (want === 0) {
          const problem = this.complete(Buffer.alloc(0));
          if (problem) return problem;
        }
      }
    }
    return undefined;
  }

  private complete(head: Buffer): string | undefined {
    this.skip = this.payloadLength - head.length;
    this.want = 0;
    this.got = 0;
    this.parts = [];
    return this.packet(this.type, head, this.payloadLength);
  }
}

function positive(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new PosternError('config_invalid', `SftpAuditor: ${name} must be a positive integer, got ${value}`);
  return value;
}

export class SftpAuditor {
  private readonly onOperation: (op: SftpOperation) => void;
  private readonly maxHandles: number;
  private readonly maxPending: number;
  private readonly handles = new Map<string, HandleStats>();
  private readonly pending = new Map<number, Pending>();
  private readonly client: Framer;
  private readonly server: Framer;
  private initSeen = false;
  private versionSeen = false;
  private reason: string | undefined;
  /** Operations found in the chunk being read, reported once it is read. */
  private found: SftpOperation[] = [];

  constructor(onOperation: (op: SftpOperation) => void, limits: SftpAuditLimits = {}) {
    this.onOperation = onOperation;
    this.maxHandles = positive(limits.maxHandles ?? 1024, 'maxHandles');
    this.maxPending = positive(limits.maxPending ?? 1024, 'maxPending');
    this.client = new Framer((type, length) => this.clientWants(type, length), (type, head, length) => this.request(type, head, length));
    this.server = new Framer((type, length) => this.serverWants(type, length), (type, head, length) => this.response(type, head, length));
  }

  /** Why the observer stopped (bad input, a limit, or the channel's end); undefined while it reads. */
  get stopped(): string | undefined {
    return this.reason;
  }

  /** Bytes the client sent toward the server (requests). */
  fromClient(chunk: Buffer): void {
    this.read(this.client, chunk, 'client');
  }

  /** Bytes the server sent back (responses). */
  fromServer(chunk: Buffer): void {
    this.read(this.server, chunk, 'server');
  }

  /** The channel closed: report what open handles read/wrote. */
  end(): void {
    if (this.reason !== undefined) return;
    for (const pending of this.pending.values()) if (pending.kind === 'close') this.totals(pending.stats);
    for (const stats of this.handles.values()) this.totals(stats);
    this.stop('the channel ended');
    this.flush();
  }

  private read(framer: Framer, chunk: Buffer, side: string): void {
    if (this.reason !== undefined) return;
    const problem = framer.push(chunk);
    if (problem !== undefined) this.stop(`${side}: ${problem}`);
    this.flush();
  }

  private stop(reason: string): void {
    this.reason = reason;
    this.handles.clear();
    this.pending.clear();
  }

  private flush(): void {
    const found = this.found;
    this.found = [];
    for (const op of found) this.onOperation(op);
  }

  private clientWants(type: number, length: number): number | string {
    if (!isRequest(type)) return `packet type ${type} is not an SFTP v3 request`;
    const followed = type === OPEN || type === CLOSE || type === READ || type === WRITE || type === REMOVE || type === MKDIR || type === RMDIR || type === RENAME || type === EXTENDED;
    if (!followed) return 0;
    if (length < 4) return `packet type ${type} is too short (${length} bytes)`;
    return type === WRITE ? Math.min(length, WRITE_HEAD) : length;
  }

  private serverWants(type: number, length: number): number | string {
    if (!isResponse(type)) return `packet type ${type} is not an SFTP v3 response`;
    if (type === HANDLE) return length >= 8 && length <= 8 + MAX_HANDLE ? length : `HANDLE of ${length} bytes does not hold one handle`;
    const need = type === STATUS || type === DATA ? 8 : 4;
    if (length < need) return `packet type ${type} is too short (${length} bytes)`;
    return need;
  }

  private track(id: number, pending: Pending): string | undefined {
    if (this.pending.size >= this.maxPending && !this.pending.has(id)) return `more than ${this.maxPending} requests await an answer`;
    this.pending.set(id, pending);
    return undefined;
  }

  private request(type: number, head: Buffer, length: number): string | undefined {
    if (type === INIT) {
      if (this.initSeen) return 'a second INIT';
      this.initSeen = true;
      return undefined;
    }
    if (!this.initSeen) return `packet type ${type} before INIT`;
    // Requests that change nothing the audit reports were skipped unread.
    if (head.length === 0) return undefined;
    const f = new Fields(head);
    const id = f.u32()!;
    const truncated = `truncated packet of type ${type}`;
    switch (type) {
      case OPEN: {
        const path = f.path();
        const flags = f.u32();
        if (path === undefined || flags === undefined) return truncated;
        return this.track(id, { kind: 'open', path, write: (flags & WRITE_FLAGS) !== 0 });
      }
      case CLOSE: case READ: {
        const handle = f.bytes(MAX_HANDLE);
        if (handle === undefined) return truncated;
        const key = handle.toString('latin1');
        const stats = this.handles.get(key);
        if (!stats) return undefined;
        if (type === READ) return this.track(id, { kind: 'read', stats });
        // Answers to reads sent before the close still count: totals go out with the close's answer.
        this.handles.delete(key);
        return this.track(id, { kind: 'close', stats });
      }
      case WRITE: {
        const handle = f.bytes(MAX_HANDLE);
        if (handle === undefined || !f.skip(8)) return truncated;
        const bytes = f.u32();
        if (bytes === undefined || bytes !== length - f.consumed) return `WRITE data length does not match its packet`;
        const stats = this.handles.get(handle.toString('latin1'));
        if (stats) stats.written += bytes;
        return undefined;
      }
      case REMOVE: case MKDIR: case RMDIR: {
        const path = f.path();
        if (path === undefined) return truncated;
        return this.track(id, { kind: type === REMOVE ? 'remove' : type === MKDIR ? 'mkdir' : 'rmdir', path });
      }
      case RENAME: case EXTENDED: {
        if (type === EXTENDED) {
          const name = f.bytes();
          if (name === undefined) return truncated;
          if (name.toString('latin1') !== 'posix-rename@openssh.com') return undefined;
        }
        const from = f.path();
        const to = f.path();
        if (from === undefined || to === undefined) return truncated;
        return this.track(id, { kind: 'rename', from, to });
      }
      default:
        return undefined;
    }
  }

  private response(type: number, head: Buffer, length: number): string | undefined {
    const f = new Fields(head);
    if (type === VERSION) {
      if (this.versionSeen) return 'a second VERSION';
      this.versionSeen = true;
      const version = f.u32()!;
      return version === 3 ? undefined : `SFTP version ${version}: only version 3 is read`;
    }
    if (!this.versionSeen) return `packet type ${type} before VERSION`;
    const id = f.u32()!;
    const pending = this.pending.get(id);
    this.pending.delete(id);
    if (type === HANDLE) {
      const handle = f.bytes(MAX_HANDLE);
      if (handle === undefined || f.consumed !== length) return 'HANDLE does not hold one handle';
      if (pending?.kind === 'open') return this.opened(handle.toString('latin1'), pending);
    } else if (type === DATA) {
      const bytes = f.u32()!;
      if (bytes !== length - 8) return 'DATA length does not match its packet';
      if (pending?.kind === 'read') pending.stats.read += bytes;
    }
    if (!pending) return undefined;
    const ok = type === STATUS && f.u32() === SSH_FX_OK;
    switch (pending.kind) {
      case 'close': this.totals(pending.stats); break;
      case 'remove': case 'mkdir': case 'rmdir': if (ok) this.found.push({ op: pending.kind, path: pending.path }); break;
      case 'rename': if (ok) this.found.push({ op: 'rename', from: pending.from, to: pending.to }); break;
      default: break;
    }
    return undefined;
  }

  private opened(key: string, pending: Extract<Pending, { kind: 'open' }>): string | undefined {
    this.found.push({ op: 'open', path: pending.path, write: pending.write });
    // A handle the server hands out again was closed without our seeing the answer.
    const previous = this.handles.get(key);
    if (previous) this.totals(previous);
    else if (this.handles.size >= this.maxHandles) return `more than ${this.maxHandles} open handles`;
    this.handles.set(key, { path: pending.path, read: 0, written: 0 });
    return undefined;
  }

  private totals(stats: HandleStats): void {
    if (stats.read > 0) this.found.push({ op: 'read', path: stats.path, bytes: stats.read });
    if (stats.written > 0) this.found.push({ op: 'write', path: stats.path, bytes: stats.written });
  }
}
