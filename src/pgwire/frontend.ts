// Typed codecs of the messages a PostgreSQL client sends after its startup packet: the simple
// and extended query protocols, COPY, the fast-path FunctionCall, and authentication responses
// (whose meaning depends on what the server asked: see decodePasswordMessage / decodeSasl*).
import { PayloadReader, PayloadWriter, PgProtocolError } from './codec.js';
import type { PgPacket } from './wire.js';

/** 0 = text, 1 = binary. */
export type FormatCode = number;

export type FrontendMessage =
  | { type: 'Query'; sql: string }
  | { type: 'Parse'; name: string; sql: string; parameterTypes: number[] }
  | { type: 'Bind'; portal: string; statement: string; parameterFormats: FormatCode[]; parameters: (Buffer | null)[]; resultFormats: FormatCode[] }
  | { type: 'Describe'; target: 'S' | 'P'; name: string }
  | { type: 'Execute'; portal: string; maxRows: number }
  | { type: 'Close'; target: 'S' | 'P'; name: string }
  | { type: 'Sync' }
  | { type: 'Flush' }
  | { type: 'CopyData'; data: Buffer }
  | { type: 'CopyDone' }
  | { type: 'CopyFail'; message: string }
  | { type: 'FunctionCall'; functionOid: number; argumentFormats: FormatCode[]; arguments: (Buffer | null)[]; resultFormat: FormatCode }
  | { type: 'Terminate' }
  /** 'p': a password, a SASL initial response, a SASL response or a GSS token; read it with the helpers below. */
  | { type: 'AuthenticationResponse'; data: Buffer };

const TYPE_BYTE: Record<FrontendMessage['type'], string> = {
  Query: 'Q', Parse: 'P', Bind: 'B', Describe: 'D', Execute: 'E', Close: 'C', Sync: 'S', Flush: 'H',
  CopyData: 'd', CopyDone: 'c', CopyFail: 'f', FunctionCall: 'F', Terminate: 'X', AuthenticationResponse: 'p',
};

function target(r: PayloadReader): 'S' | 'P' {
  const t = String.fromCharCode(r.int8());
  if (t !== 'S' && t !== 'P') throw r.bad(`target '${t}' (S or P)`);
  return t;
}

function formats(r: PayloadReader): FormatCode[] {
  return Array.from({ length: r.count() }, () => r.int16());
}

export function decodeFrontend(packet: Pick<PgPacket, 'type' | 'payload'>): FrontendMessage {
  const r = new PayloadReader(packet.payload, `frontend message '${packet.type}'`);
  let message: FrontendMessage;
  switch (packet.type) {
    case 'Q': message = { type: 'Query', sql: r.cstring() }; break;
    case 'P': {
      const name = r.cstring();
      const sql = r.cstring();
      message = { type: 'Parse', name, sql, parameterTypes: Array.from({ length: r.count() }, () => r.uint32()) };
      break;
    }
    case 'B': {
      const portal = r.cstring();
      const statement = r.cstring();
      const parameterFormats = formats(r);
      const parameters = Array.from({ length: r.count() }, () => r.nullableBytes());
      message = { type: 'Bind', portal, statement, parameterFormats, parameters, resultFormats: formats(r) };
      break;
    }
    case 'D': message = { type: 'Describe', target: target(r), name: r.cstring() }; break;
    case 'E': message = { type: 'Execute', portal: r.cstring(), maxRows: r.int32() }; break;
    case 'C': message = { type: 'Close', target: target(r), name: r.cstring() }; break;
    case 'S': message = { type: 'Sync' }; break;
    case 'H': message = { type: 'Flush' }; break;
    case 'd': message = { type: 'CopyData', data: r.rest() }; break;
    case 'c': message = { type: 'CopyDone' }; break;
    case 'f': message = { type: 'CopyFail', message: r.cstring() }; break;
    case 'F': {
      const functionOid = r.uint32();
      const argumentFormats = formats(r);
      const args = Array.from({ length: r.count() }, () => r.nullableBytes());
      message = { type: 'FunctionCall', functionOid, argumentFormats, arguments: args, resultFormat: r.int16() };
      break;
    }
    case 'X': message = { type: 'Terminate' }; break;
    case 'p': message = { type: 'AuthenticationResponse', data: r.rest() }; break;
    default: throw new PgProtocolError('unknown_message_type', `unknown frontend message type '${packet.type}'`);
  }
  r.end();
  return message;
}

export function encodeFrontend(message: FrontendMessage): Buffer {
  const w = new PayloadWriter();
  switch (message.type) {
    case 'Query': w.cstring(message.sql); break;
    case 'Parse':
      w.cstring(message.name).cstring(message.sql).int16(message.parameterTypes.length);
      for (const oid of message.parameterTypes) w.uint32(oid);
      break;
    case 'Bind':
      w.cstring(message.portal).cstring(message.statement).int16(message.parameterFormats.length);
      for (const f of message.parameterFormats) w.int16(f);
      w.int16(message.parameters.length);
      for (const p of message.parameters) w.nullableBytes(p);
      w.int16(message.resultFormats.length);
      for (const f of message.resultFormats) w.int16(f);
      break;
    case 'Describe': case 'Close': w.int8(message.target.charCodeAt(0)).cstring(message.name); break;
    case 'Execute': w.cstring(message.portal).int32(message.maxRows); break;
    case 'CopyData': w.bytes(message.data); break;
    case 'CopyFail': w.cstring(message.message); break;
    case 'FunctionCall':
      w.uint32(message.functionOid).int16(message.argumentFormats.length);
      for (const f of message.argumentFormats) w.int16(f);
      w.int16(message.arguments.length);
      for (const a of message.arguments) w.nullableBytes(a);
      w.int16(message.resultFormat);
      break;
    case 'AuthenticationResponse': w.bytes(message.data); break;
    case 'Sync': case 'Flush': case 'CopyDone': case 'Terminate': break;
  }
  return w.typed(TYPE_BYTE[message.type]);
}

/** The 'p' data after AuthenticationCleartextPassword or MD5Password. */
export function decodePasswordMessage(data: Buffer): string {
  const r = new PayloadReader(data, 'PasswordMessage');
  const password = r.cstring();
  r.end();
  return password;
}

export function encodePasswordMessage(password: string): Buffer {
  return encodeFrontend({ type: 'AuthenticationResponse', data: new PayloadWriter().cstring(password).untyped().subarray(4) });
}

/** The first 'p' after AuthenticationSASL: the mechanism chosen and its initial response (null: none). */
export function decodeSaslInitialResponse(data: Buffer): { mechanism: string; response: Buffer | null } {
  const r = new PayloadReader(data, 'SASLInitialResponse');
  const mechanism = r.cstring();
  const response = r.nullableBytes();
  r.end();
  return { mechanism, response };
}

export function encodeSaslInitialResponse(mechanism: string, response: Buffer | null): Buffer {
  return encodeFrontend({ type: 'AuthenticationResponse', data: new PayloadWriter().cstring(mechanism).nullableBytes(response).untyped().subarray(4) });
}

/** Later 'p' messages of a SASL exchange carry the mechanism's bytes as they are. */
export function encodeSaslResponse(response: Buffer): Buffer {
  return encodeFrontend({ type: 'AuthenticationResponse', data: response });
}
