// Country lists of `where`: ISO 3166-1 alpha-2 codes, with `EU` standing for the member states.

/** The 27 EU member states (ISO codes: Greece is GR, not the EU's own EL). */
export const EU_MEMBERS: readonly string[] = [
  'AT', 'BE', 'BG', 'HR', 'CY', 'CZ', 'DK', 'EE', 'FI', 'FR', 'DE', 'GR', 'HU', 'IE',
  'IT', 'LV', 'LT', 'LU', 'MT', 'NL', 'PL', 'PT', 'RO', 'SK', 'SI', 'ES', 'SE',
];

/** Upper-cased codes with `EU` replaced by its members. */
export function expandCountries(codes: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const raw of codes) {
    const code = raw.toUpperCase();
    if (code === 'EU') for (const member of EU_MEMBERS) out.add(member);
    else out.add(code);
  }
  return out;
}

/** CLDR region names that are not countries (unknown, groupings, unions other than EU). */
const NOT_COUNTRIES = new Set(['ZZ', 'QO', 'UN', 'EZ']);
const regionNames = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

/** Whether an upper-cased two-letter code names a country or territory (XK, Kosovo, included), or is EU. */
export function isCountryCode(code: string): boolean {
  if (code === 'EU') return true;
  return /^[A-Z]{2}$/.test(code) && !NOT_COUNTRIES.has(code) && regionNames.of(code) !== undefined;
}
