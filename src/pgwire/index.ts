// Public face of the PostgreSQL wire protocol (3.0): both ends of a `postgres` socket speak it,
// the edge to the person's client and the connector to the database.
export { MAX_MESSAGE_LENGTH, MAX_SMALL_MESSAGE_LENGTH, MAX_STARTUP_LENGTH, PROTOCOL_3_0, PgDecoder, PgProtocolError, decodeStartup, encodeStartup } from './wire.js';
export type { PgDecoderHandler, PgDecoderOptions, PgPacket, PgProtocolErrorReason, StartupPacket } from './wire.js';
export { decodeFrontend, decodePasswordMessage, decodeSaslInitialResponse, encodeFrontend, encodePasswordMessage, encodeSaslInitialResponse, encodeSaslResponse } from './frontend.js';
export type { FormatCode, FrontendMessage } from './frontend.js';
export { SqlState, commandTagRows, commandTagVerb, decodeBackend, encodeBackend, errorResponse } from './backend.js';
export type { BackendMessage, FieldDescription, NoticeFields, TransactionStatus } from './backend.js';
export { ROLE_OPTION, askedRole, roleOption, splitStartupOptions, startupSettings } from './options.js';
