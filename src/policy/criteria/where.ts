// `where`: the client address (CIDRs, IPv4-mapped IPv6 as IPv4) and its country. An unknown
// country fails closed: an allow rule naming countries (in `country` or `country_not`) does
// not match it, a deny rule naming countries does.
import { expandCountries } from '../countries.js';
import type { Facts } from '../facts.js';
import { cidrContains, parseCidr } from '../../ip.js';
import type { Cidr } from '../../ip.js';
import type { Effect, RuleOutcome, WhereCondition } from '../types.js';
import { listText } from './condition.js';
import type { Condition, Criterion } from './condition.js';

function compileCidrs(entries: readonly string[]): Cidr[] {
  return entries.map((entry, i) => {
    const cidr = parseCidr(entry);
    if (!cidr) throw new Error(`where.ip[${i}]: "${entry}" is not an IP address or CIDR`);
    return cidr;
  });
}

export function compileWhere(block: WhereCondition, effect: Effect): Condition | undefined {
  const cidrs = block.ip ? compileCidrs(block.ip) : undefined;
  const only = block.country ? expandCountries(block.country) : undefined;
  const not = block.country_not ? expandCountries(block.country_not) : undefined;
  if (!cidrs && !only && !not) return undefined;

  const test = (f: Facts): RuleOutcome => {
    if (cidrs) {
      const ip = f.ip();
      let inside = false;
      if (ip) for (const cidr of cidrs) if (cidrContains(cidr, ip)) { inside = true; break; }
      if (!inside) return 'where-ip';
    }
    if (only || not) {
      const country = f.countryCode();
      if (country === undefined) return effect === 'allow' ? 'where-country-unknown' : 'matched';
      if (only && !only.has(country)) return 'where-country';
      if (not && not.has(country)) return 'where-country-not';
    }
    return 'matched';
  };

  const detail = (f: Facts, outcome: RuleOutcome): string => {
    const country = f.countryCode();
    switch (outcome) {
      case 'where-ip': return f.ip() ? `client address ${f.ctx.clientIp} is not in ${listText(cidrs!.map((c) => c.text))}` : `client address "${f.ctx.clientIp}" is not an IP address`;
      case 'where-country-unknown': return `the country of ${f.ctx.clientIp} is unknown and the rule names countries`;
      case 'where-country': return `country ${country} is not one of ${listText(block.country!)}`;
      case 'where-country-not': return `country ${country} is excluded (${listText(block.country_not!)})`;
      default: return `from ${f.ctx.clientIp}${country ? ` (${country})` : (only || not) ? ' (country unknown: a deny rule naming countries applies)' : ''}`;
    }
  };
  return { test, detail };
}

export const whereCriterion: Criterion = {
  name: 'where',
  compile: (rule) => (rule.where ? compileWhere(rule.where, rule.effect) : undefined),
};
