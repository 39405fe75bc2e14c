// Country of an IP address, for `where: { country: [...] }` rules and for audit lines. The
// default reads the GeoLite2 data that the geoip-lite package ships (no network, loaded on the
// first lookup, since it costs ~150 MB); an operator may point at a MaxMind .mmdb file instead.
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { open } from 'maxmind';
import type { CountryResponse, Reader } from 'maxmind';
import { errorMessage, PosternError } from '../errors.js';
import { isPublicIp, normalizeIp } from './cidr.js';

export interface GeoLookup {
  /** ISO 3166-1 alpha-2, upper case; undefined for private, loopback, reserved or unknown. */
  country(ip: string): string | undefined;
}

export interface GeoOptions {
  /** A MaxMind GeoLite2/GeoIP2 Country or City database; the bundled data when absent. */
  readonly file?: string;
}

const ISO_ALPHA2 = /^[A-Z]{2}$/;

/** The address to look up, folded (`::ffff:1.2.3.4` → `1.2.3.4`), or undefined when not public. */
function lookupKey(ip: string): string | undefined {
  const normal = normalizeIp(ip);
  return normal !== undefined && isPublicIp(normal) ? normal : undefined;
}

function countryCode(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const code = value.toUpperCase();
  return ISO_ALPHA2.test(code) ? code : undefined;
}

interface GeoipLite {
  lookup(ip: string): { country?: string } | null;
}

/** The geoip-lite data, required on first use: the module reads all its files when loaded. */
export function bundledGeoLookup(): GeoLookup {
  let geoip: GeoipLite | undefined;
  return {
    country(ip) {
      const key = lookupKey(ip);
      if (key === undefined) return undefined;
      geoip ??= createRequire(import.meta.url)('geoip-lite') as GeoipLite;
      return countryCode(geoip.lookup(key)?.country);
    },
  };
}

/** Opens a MaxMind DB; a missing file or one that is not an mmdb is a one-line config error. */
export async function openGeoFile(path: string): Promise<GeoLookup> {
  const fail = (why: string, cause?: unknown): PosternError =>
    new PosternError('config_invalid', `geo database ${path}: ${why}`, { cause });
  let isFile: boolean;
  try {
    isFile = (await stat(path)).isFile();
  } catch (err) {
    throw fail((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err), err);
  }
  if (!isFile) throw fail('not a file');
  let reader: Reader<CountryResponse>;
  try {
    reader = await open<CountryResponse>(path);
  } catch (err) {
    throw fail('not a MaxMind DB (.mmdb) file', err);
  }
  // A file that merely contains the metadata marker can still decode to nonsense.
  const { binaryFormatMajorVersion, ipVersion, nodeCount } = reader.metadata;
  if (binaryFormatMajorVersion !== 2 || (ipVersion !== 4 && ipVersion !== 6) || !(nodeCount > 0)) {
    throw fail('not a MaxMind DB (.mmdb) file');
  }
  return {
    country(ip) {
      const key = lookupKey(ip);
      // An IPv4-only database cannot place IPv6 addresses.
      if (key === undefined || (ipVersion === 4 && key.includes(':'))) return undefined;
      try {
        return countryCode(reader.get(key)?.country?.iso_code);
      } catch {
        // A corrupt record must not break the request that asked; the address stays unplaced.
        return undefined;
      }
    },
  };
}

export async function createGeoLookup(options: GeoOptions = {}): Promise<GeoLookup> {
  return options.file === undefined ? bundledGeoLookup() : openGeoFile(options.file);
}
