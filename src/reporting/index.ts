// The public face of src/reporting: the audit vocabulary and its recorder, metrics, recordings and
// their search, geo lookup, client-address rules, and the exporters (webhook, syslog) with their resumable loop.
export { AUDIT_EVENT_TYPES } from './events.js';
export type { AuditDecision, AuditEvent, AuditEventType, AuditQuery, NewAuditEvent } from './events.js';
export { AuditRecorder } from './recorder.js';
export type { AuditRecorderOptions } from './recorder.js';
export { Metrics } from './metrics.js';

export type { RecordingHandle, RecordingMeta, RecordingSink } from './recording.js';
export { createRecordingSink, DEFAULT_RECORDING_MAX_BYTES } from './recording-sink.js';
export type { RecordingSinkLogger, RecordingSinkOptions, RecordingWriter, StoreRecordingSink } from './recording-sink.js';
export { castEventLine, castHeaderLine, eventTime, parseEventLine, replayDelayMs, replaySchedule, resizeData, slices } from './asciicast.js';
export type { CastEvent, CastEventCode, CastHeader, CastHeaderSource, ReplayTiming } from './asciicast.js';
export { CastSearch } from './cast-search.js';
export type { CastMatch } from './cast-search.js';

export { describeEvent } from './describe.js';
export { canonicalIp, clientNetwork, compileCidrs, formatIp, isPublicIp, normalizeIp, NON_PUBLIC_RANGES, parseIp } from './cidr.js';
export type { CompiledCidrs, ParsedIp } from './cidr.js';

export { clientAddress, parseProxyHeader } from './trusted-proxies.js';
export type { ProxyHeader, ProxyTlv } from './trusted-proxies.js';

export { bundledGeoLookup, createGeoLookup, openGeoFile } from './geo.js';
export type { GeoLookup, GeoOptions } from './geo.js';

export { createSyslogSink, escapeParamValue, formatSyslog, parseSyslogUrl, SYSLOG_FACILITIES, syslogSeverity } from './syslog.js';
export type { SyslogFacility, SyslogFormatOptions, SyslogSink, SyslogSinkOptions } from './syslog.js';

export { createWebhookSink, SIGNATURE_HEADER, webhookBody, webhookSignature } from './webhook.js';
export type { WebhookSink, WebhookSinkOptions } from './webhook.js';

export { AuditExporter, defaultRetry } from './exporter.js';
export type {
  AuditExporterOptions,
  AuditSink,
  AuditSource,
  CursorStore,
  ExporterLogger,
  ExporterStatus,
} from './exporter.js';
