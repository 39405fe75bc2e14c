// Typed codecs of the messages a PostgreSQL server sends: authentication, session parameters,
// results (RowDescription, DataRow, CommandComplete with the row count from its tag), errors and
// notices with their named fields, COPY, and the extended-protocol acknowledgements. The proxy
// writes some of these itself (a refusal as ErrorResponse 42501, a FATAL 57P01 on a kill).
import { PayloadReader, PayloadWriter, PgProtocolError } from './codec.js';
import type { FormatCode } from './frontend.js';
import type { PgPacket } from './wire.js';

export type TransactionStatus = 'I' | 'T' | 'E';

export interface FieldDescription {
  name: string;
  tableOid: number;
  columnNumber: number;
  typeOid: number;
  typeSize: number;
  typeModifier: number;
  format: FormatCode;
}

/** ErrorResponse / NoticeResponse fields by their one-letter codes (S severity, V severity unlocalized, C SQLSTATE, M message, D detail, H hint, P position, …). */
export type NoticeFields = Partial<Record<string, string>> & { S?: string; V?: string; C?: string; M?: string; D?: string; H?: string };

export type BackendMessage =
  | { type: 'AuthenticationOk' }
  | { type: 'AuthenticationCleartextPassword' }
  | { type: 'AuthenticationMD5Password'; salt: Buffer }
  | { type: 'AuthenticationGSS' }
  | { type: 'AuthenticationGSSContinue'; data: Buffer }
  | { type: 'AuthenticationSSPI' }
  | { type: 'AuthenticationSASL'; mechanisms: string[] }
  | { type: 'AuthenticationSASLContinue'; data: Buffer }
  | { type: 'AuthenticationSASLFinal'; data: Buffer }
  | { type: 'ParameterStatus'; name: string; value: string }
  | { type: 'BackendKeyData'; processId: number; secretKey: Buffer }
  | { type: 'ReadyForQuery'; status: TransactionStatus }
  | { type: 'RowDescription'; fields: FieldDescription[] }
  | { type: 'DataRow'; values: (Buffer | null)[] }
  | { type: 'CommandComplete'; tag: string }
  | { type: 'ErrorResponse'; fields: NoticeFields }
  | { type: 'NoticeResponse'; fields: NoticeFields }
  | { type: 'CopyInResponse' | 'CopyOutResponse' | 'CopyBothResponse'; format: FormatCode; columnFormats: FormatCode[] }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyDone' }
  | { type: 'ParseComplete' }
  | { type: 'BindComplete' }
  | { type: 'CloseComplete' }
  | { type: 'EmptyQueryResponse' }
  | { type: 'PortalSuspended' }
  | { type: 'NoData' }
  | { type: 'ParameterDescription'; typeOids: number[] }
  | { type: 'NotificationResponse'; processId: number; channel: string; payload: string }
  | { type: 'FunctionCallResponse'; result: Buffer | null }
  | { type: 'NegotiateProtocolVersion'; newestMinor: number; unrecognizedOptions: string[] };

const AUTH_CODES = {
  AuthenticationOk: 0, AuthenticationCleartextPassword: 3, AuthenticationMD5Password: 5, AuthenticationGSS: 7,
  AuthenticationGSSContinue: 8, AuthenticationSSPI: 9, AuthenticationSASL: 10, AuthenticationSASLContinue: 11, AuthenticationSASLFinal: 12,
} as const;

const TYPE_BYTE: Record<Exclude<BackendMessage['type'], keyof typeof AUTH_CODES>, string> = {
  ParameterStatus: 'S', BackendKeyData: 'K', ReadyForQuery: 'Z', RowDescription: 'T', DataRow: 'D', CommandComplete: 'C',
  ErrorResponse: 'E', NoticeResponse: 'N', CopyInResponse: 'G', CopyOutResponse: 'H', CopyBothResponse: 'W', CopyData: 'd',
  CopyDone: 'c', ParseComplete: '1', BindComplete: '2', CloseComplete: '3', EmptyQueryResponse: 'I', PortalSuspended: 's',
  NoData: 'n', ParameterDescription: 't', NotificationResponse: 'A', FunctionCallResponse: 'V', NegotiateProtocolVersion: 'v',
};

const EMPTY: Partial<Record<string, BackendMessage>> = {
  c: { type: 'CopyDone' }, 1: { type: 'ParseComplete' }, 2: { type: 'BindComplete' }, 3: { type: 'CloseComplete' },
  I: { type: 'EmptyQueryResponse' }, s: { type: 'PortalSuspended' }, n: { type: 'NoData' },
};

function decodeAuthentication(r: PayloadReader): BackendMessage {
  const code = r.int32();
  switch (code) {
    case 0: return { type: 'AuthenticationOk' };
    case 3: return { type: 'AuthenticationCleartextPassword' };
    case 5: return { type: 'AuthenticationMD5Password', salt: r.bytes(4) };
    case 7: return { type: 'AuthenticationGSS' };
    case 8: return { type: 'AuthenticationGSSContinue', data: r.rest() };
    case 9: return { type: 'AuthenticationSSPI' };
    case 10: {
      const mechanisms: string[] = [];
      for (let m = r.cstring(); m !== ''; m = r.cstring()) mechanisms.push(m);
      return { type: 'AuthenticationSASL', mechanisms };
    }
    case 11: return { type: 'AuthenticationSASLContinue', data: r.rest() };
    case 12: return { type: 'AuthenticationSASLFinal', data: r.rest() };
    default: throw r.bad(`unknown authentication request ${code}`);
  }
}

function decodeFields(r: PayloadReader): NoticeFields {
  const entries: [string, string][] = [];
  for (let code = r.int8(); code !== 0; code = r.int8()) entries.push([String.fromCharCode(code), r.cstring()]);
  return Object.fromEntries(entries) as NoticeFields;
}

export function decodeBackend(packet: Pick<PgPacket, 'type' | 'payload'>): BackendMessage {
  const r = new PayloadReader(packet.payload, `backend message '${packet.type}'`);
  const empty = EMPTY[packet.type];
  let message: BackendMessage;
  if (empty) message = { ...empty };
  else switch (packet.type) {
    case 'R': message = decodeAuthentication(r); break;
    case 'S': message = { type: 'ParameterStatus', name: r.cstring(), value: r.cstring() }; break;
    case 'K': {
      const processId = r.int32();
      const secretKey = r.rest();
      if (secretKey.length < 4 || secretKey.length > 256) throw r.bad(`a cancel key of ${secretKey.length} bytes`);
      message = { type: 'BackendKeyData', processId, secretKey };
      break;
    }
    case 'Z': {
      const status = String.fromCharCode(r.int8());
      if (status !== 'I' && status !== 'T' && status !== 'E') throw r.bad(`transaction status '${status}'`);
      message = { type: 'ReadyForQuery', status };
      break;
    }
    case 'T': message = {
      type: 'RowDescription',
      fields: Array.from({ length: r.count() }, () => ({
        name: r.cstring(), tableOid: r.uint32(), columnNumber: r.int16(), typeOid: r.uint32(), typeSize: r.int16(), typeModifier: r.int32(), format: r.int16(),
      })),
    }; break;
    case 'D': message = { type: 'DataRow', values: Array.from({ length: r.count() }, () => r.nullableBytes()) }; break;
    case 'C': message = { type: 'CommandComplete', tag: r.cstring() }; break;
    case 'E': message = { type: 'ErrorResponse', fields: decodeFields(r) }; break;
    case 'N': message = { type: 'NoticeResponse', fields: decodeFields(r) }; break;
    case 'G': case 'H': case 'W': {
      const copyType = packet.type === 'G' ? 'CopyInResponse' : packet.type === 'H' ? 'CopyOutResponse' : 'CopyBothResponse';
      message = { type: copyType, format: r.int8(), columnFormats: Array.from({ length: r.count() }, () => r.int16()) };
      break;
    }
    case 'd': message = { type: 'CopyData', data: r.rest() }; break;
    case 't': message = { type: 'ParameterDescription', typeOids: Array.from({ length: r.count() }, () => r.uint32()) }; break;
    case 'A': message = { type: 'NotificationResponse', processId: r.int32(), channel: r.cstring(), payload: r.cstring() }; break;
    case 'V': message = { type: 'FunctionCallResponse', result: r.nullableBytes() }; break;
    case 'v': {
      const newestMinor = r.int32();
      const n = r.int32();
      if (n < 0) throw r.bad(`negative option count ${n}`);
      const unrecognizedOptions: string[] = [];
      for (let i = 0; i < n; i++) unrecognizedOptions.push(r.cstring());
      message = { type: 'NegotiateProtocolVersion', newestMinor, unrecognizedOptions };
      break;
    }
    default: throw new PgProtocolError('unknown_message_type', `unknown backend message type '${packet.type}'`);
  }
  r.end();
  return message;
}

function encodeFields(w: PayloadWriter, fields: NoticeFields): void {
  for (const [code, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (code.length !== 1 || code === '\0') throw new PgProtocolError('bad_message', `an error field code must be one character, not "${code}"`);
    w.int8(code.charCodeAt(0)).cstring(value);
  }
  w.int8(0);
}

export function encodeBackend(message: BackendMessage): Buffer {
  const w = new PayloadWriter();
  switch (message.type) {
    case 'AuthenticationOk': case 'AuthenticationCleartextPassword': case 'AuthenticationGSS': case 'AuthenticationSSPI':
      return w.int32(AUTH_CODES[message.type]).typed('R');
    case 'AuthenticationMD5Password': return w.int32(5).bytes(message.salt).typed('R');
    case 'AuthenticationGSSContinue': case 'AuthenticationSASLContinue': case 'AuthenticationSASLFinal':
      return w.int32(AUTH_CODES[message.type]).bytes(message.data).typed('R');
    case 'AuthenticationSASL':
      w.int32(10);
      for (const m of message.mechanisms) w.cstring(m);
      return w.int8(0).typed('R');
    case 'ParameterStatus': w.cstring(message.name).cstring(message.value); break;
    case 'BackendKeyData': w.int32(message.processId).bytes(message.secretKey); break;
    case 'ReadyForQuery': w.int8(message.status.charCodeAt(0)); break;
    case 'RowDescription':
      w.int16(message.fields.length);
      for (const f of message.fields) w.cstring(f.name).uint32(f.tableOid).int16(f.columnNumber).uint32(f.typeOid).int16(f.typeSize).int32(f.typeModifier).int16(f.format);
      break;
    case 'DataRow':
      w.int16(message.values.length);
      for (const v of message.values) w.nullableBytes(v);
      break;
    case 'CommandComplete': w.cstring(message.tag); break;
    case 'ErrorResponse': case 'NoticeResponse': encodeFields(w, message.fields); break;
    case 'CopyInResponse': case 'CopyOutResponse': case 'CopyBothResponse':
      w.int8(message.format).int16(message.columnFormats.length);
      for (const f of message.columnFormats) w.int16(f);
      break;
    case 'CopyData': w.bytes(message.data); break;
    case 'ParameterDescription':
      w.int16(message.typeOids.length);
      for (const oid of message.typeOids) w.uint32(oid);
      break;
    case 'NotificationResponse': w.int32(message.processId).cstring(message.channel).cstring(message.payload); break;
    case 'FunctionCallResponse': w.nullableBytes(message.result); break;
    case 'NegotiateProtocolVersion':
      w.int32(message.newestMinor).int32(message.unrecognizedOptions.length);
      for (const o of message.unrecognizedOptions) w.cstring(o);
      break;
    case 'CopyDone': case 'ParseComplete': case 'BindComplete': case 'CloseComplete': case 'EmptyQueryResponse': case 'PortalSuspended': case 'NoData':
      break;
  }
  return w.typed(TYPE_BYTE[message.type]);
}

/** Rows a command touched or returned, from its CommandComplete tag (`INSERT 0 5` → 5, `SELECT 3` → 3); undefined for tags without a count. */
export function commandTagRows(tag: string): number | undefined {
  const match = /^(?:INSERT \d+|SELECT|UPDATE|DELETE|MERGE|FETCH|MOVE|COPY) (\d+)$/.exec(tag);
  return match ? Number(match[1]) : undefined;
}

/** The statement's verb from its tag (`CREATE TABLE`, `INSERT`, `SELECT`). */
export function commandTagVerb(tag: string): string {
  return tag.replace(/( \d+)+$/, '');
}

/** An ErrorResponse as the proxy writes it: severity in both S and V, a SQLSTATE, a message, optional detail and hint. */
export function errorResponse(options: { severity: 'ERROR' | 'FATAL'; code: string; message: string; detail?: string; hint?: string }): Buffer {
  if (!/^[0-9A-Z]{5}$/.test(options.code)) throw new PgProtocolError('bad_message', `"${options.code}" is not a SQLSTATE`);
  return encodeBackend({
    type: 'ErrorResponse',
    fields: { S: options.severity, V: options.severity, C: options.code, M: options.message, D: options.detail, H: options.hint },
  });
}

/** SQLSTATEs the proxy answers with. */
export const SqlState = {
  /** A statement a read-only policy refuses. */
  insufficientPrivilege: '42501',
  /** A person the policy does not allow onto the database. */
  invalidAuthorization: '28000',
  /** A session ended by a kill, a policy change or a revoked sign-in. */
  adminShutdown: '57P01',
  protocolViolation: '08P01',
  syntaxError: '42601',
} as const;
