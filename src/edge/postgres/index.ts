// The PostgreSQL wire protocol and the read-only classifier that `postgres` sockets stand on.
export { MAX_MESSAGE_LENGTH, MAX_SMALL_MESSAGE_LENGTH, MAX_STARTUP_LENGTH, PROTOCOL_3_0, PgDecoder, PgProtocolError, decodeStartup, encodeStartup } from './wire.js';
export type { PgDecoderHandler, PgDecoderOptions, PgPacket, PgProtocolErrorReason, StartupPacket } from './wire.js';
export { decodeFrontend, decodePasswordMessage, decodeSaslInitialResponse, encodeFrontend, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse } from './frontend.js';
export type { FormatCode, FrontendMessage } from './frontend.js';
export { SqlState, commandTagRows, commandTagVerb, decodeBackend, encodeBackend, errorResponse } from './backend.js';
export type { BackendMessage, FieldDescription, NoticeFields, TransactionStatus } from './backend.js';
export { SqlSyntaxError, classifyStatements, loadParser, readOnlyVerdict } from './classify.js';
export type { ClassifyOptions, ReadOnlyVerdict, StatementClass, StatementKind } from './classify.js';
