/**
 * Dollars from the server's exact decimal text, without floating point: the amounts are read as integer
 * picodollars (BigInt) and rounded half to even, as Python's Decimal does in llmcost_nb.core.money.format_usd.
 */

export type CurrencyFormat = 'cents' | 'adaptive' | 'exact';

const PICO = 12;

function toPico(text: string): bigint {
  const negative = text.startsWith('-');
  const [whole, frac = ''] = (negative ? text.slice(1) : text).split('.');
  const digits = (frac + '0'.repeat(PICO)).slice(0, PICO);
  const value = BigInt(whole || '0') * 10n ** BigInt(PICO) + BigInt(digits || '0');
  return negative ? -value : value;
}

function roundHalfEven(value: bigint, places: number): bigint {
  const unit = 10n ** BigInt(PICO - places);
  const sign = value < 0n ? -1n : 1n;
  const abs = value * sign;
  let q = abs / unit;
  const r = abs % unit;
  if (r * 2n > unit || (r * 2n === unit && q % 2n === 1n)) {
    q += 1n;
  }
  return q * sign;
}

function withSeparators(whole: string): string {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function fixed(value: bigint, places: number): string {
  const rounded = roundHalfEven(value, places);
  const negative = rounded < 0n;
  const abs = negative ? -rounded : rounded;
  const text = abs.toString().padStart(places + 1, '0');
  const whole = text.slice(0, text.length - places);
  const frac = text.slice(text.length - places);
  return `${negative ? '-' : ''}$${withSeparators(whole)}${places ? '.' + frac : ''}`;
}

const CENT = 10n ** BigInt(PICO - 2);
const SUB_CENT_4DP = 10n ** BigInt(PICO - 4);

/**
 * `usd("0.000044")` → `$0.000044`; `usd("3.1")` → `$3.10` (cents, the default), `$3.1000` (adaptive, as
 * under a %%llmcost cell) or `$3.1` (exact). A sub-cent amount is never shown as $0.00: it keeps 4
 * decimals from $0.0001 up and 6 below. `null` (unknown) → `$?`.
 */
export function usd(text: string | null | undefined, format: CurrencyFormat = 'cents'): string {
  if (text === null || text === undefined) {
    return '$?';
  }
  if (format === 'exact') {
    return text.startsWith('-') ? `-$${text.slice(1)}` : `$${text}`;
  }
  const value = toPico(text);
  const abs = value < 0n ? -value : value;
  if (value !== 0n && abs < CENT) {
    return fixed(value, format === 'adaptive' || abs < SUB_CENT_4DP ? 6 : 4);
  }
  if (format === 'adaptive') {
    return fixed(value, abs < 100n * 10n ** BigInt(PICO) ? 4 : 2);
  }
  return fixed(value, 2);
}

/**
 * One call's cost, in the words of llmcost_nb.core.money.format_cost: `$0.0042`; `≈$0.0042` when its
 * tokens were estimated; `unpriced` for a billed call with no known price (never $0); `—` when not billed.
 */
export function callCost(
  cost: string | null | undefined,
  billed: boolean | undefined,
  estimated: boolean,
  format: CurrencyFormat = 'cents'
): string {
  if (billed === false) {
    return '—';
  }
  if (cost === null || cost === undefined) {
    return 'unpriced';
  }
  return (estimated ? '≈' : '') + usd(cost, format);
}

/**
 * A sum over calls, in the words of llmcost_nb.core.money.format_total: `$1.20`; `≈$1.20 (2 estimated)`
 * when some of its calls' tokens were estimated; `$1.20 + 3 unpriced` when billed calls without a price are
 * left out of it; `3 unpriced` when nothing in it was priced.
 */
export function total(
  cost: string | null | undefined,
  unpriced: number | undefined,
  estimated: number | undefined,
  format: CurrencyFormat = 'cents'
): string {
  const left = unpriced ?? 0;
  const guessed = estimated ?? 0;
  const count = (n: number) => n.toLocaleString('en-US');
  if (left && (cost === null || cost === undefined || toPico(cost) === 0n)) {
    return `${count(left)} unpriced`;
  }
  let text = (guessed ? '≈' : '') + usd(cost ?? '0', format);
  if (guessed) {
    text += ` (${count(guessed)} estimated)`;
  }
  if (left) {
    text += ` + ${count(left)} unpriced`;
  }
  return text;
}

/**
 * What a spend against a budget leaves out, in the words of llmcost_nb.core.money.not_counting:
 * `not counting 3 unpriced calls` (`''` for none or unknown). Put after the amount with ` · `.
 */
export function notCounting(unpriced: number | null | undefined): string {
  const n = unpriced ?? 0;
  return n ? `not counting ${n.toLocaleString('en-US')} unpriced call${n === 1 ? '' : 's'}` : '';
}

/** The share of a budget as a percentage for people: `"0.8456"` → `85%`. */
export function percent(fraction: string | null | undefined): string {
  if (fraction === null || fraction === undefined) {
    return '';
  }
  return `${fixed(toPico(fraction) * 100n, 0).slice(1)}%`;
}

/** Whether `fraction` (decimal text) is at least `threshold` (decimal text). */
export function atLeast(fraction: string | null | undefined, threshold: string): boolean {
  return fraction !== null && fraction !== undefined && toPico(fraction) >= toPico(threshold);
}
