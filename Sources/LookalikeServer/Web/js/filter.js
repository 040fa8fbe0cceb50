// The metadata filter box's syntax, read into the API's filter object. Pure: no DOM, no state.
//   parseFilter('color=red price<50 price>=10') → {color: 'red', price: {$lt: 50, $gte: 10}}

const FILTER_OPS = { '=': '$eq', '==': '$eq', '!=': '$ne', '<': '$lt', '<=': '$lte', '>': '$gt', '>=': '$gte' };
// One condition: key, operator, then a "quoted string" or a bare word.
const CONDITION = /([^\s=!<>"]+)\s*(!=|==|<=|>=|=|<|>)\s*("(?:[^"\\]|\\.)*"|[^\s"]+)/y;
// A bare word is a number only when written as a plain decimal (45, -3, 49.50), as the CLI reads
// CSV metadata: a code with a leading zero (007), an exponent or a "+" stays text.
const NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?$/;

/** A bare word of the filter syntax as a value: number, boolean or string. */
function literal(raw) {
  if (raw.startsWith('"')) return raw.slice(1, -1).replace(/\\(.)/g, '$1');
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  return NUMBER.test(raw) ? Number(raw) : raw;
}

/**
 * Reads the filter box: a JSON object (text starting with `{`), or space-separated conditions
 * `key=value key!=value key<n key<=n key>n key>=n`. Returns the API's filter object, or null
 * when the text is empty. Throws an Error whose message is meant for people.
 *   parseFilter('color=red price<50 price>=10')
 *   → {color: 'red', price: {$lt: 50, $gte: 10}}
 */
export function parseFilter(text) {
  const source = text.trim();
  if (!source) return null;
  if (source.startsWith('{')) {
    let value;
    try { value = JSON.parse(source); } catch (e) { throw new Error(`The filter is not valid JSON (${e.message}).`); }
    if (!value || typeof value !== 'object' || Array.isArray(value)) throw new Error('A JSON filter must be an object.');
    return value;
  }
  const byKey = new Map(); // key → {operator: value}
  let at = 0;
  while (at < source.length) {
    while (/\s/.test(source[at])) at++;
    CONDITION.lastIndex = at;
    const match = CONDITION.exec(source);
    const end = CONDITION.lastIndex;
    if (!match || (end < source.length && !/\s/.test(source[end]))) {
      const near = source.slice(at).split(/\s/)[0];
      throw new Error(`Cannot read “${near}”: write conditions like color=red or price<50, separated by spaces.`);
    }
    const [, key, symbol, raw] = match;
    const op = FILTER_OPS[symbol];
    const ops = byKey.get(key) ?? {};
    if (op in ops) throw new Error(`“${key}” has two ${symbol} conditions${op === '$eq' ? '; for alternatives use a JSON filter with $in' : ''}.`);
    ops[op] = literal(raw);
    byKey.set(key, ops);
    at = end;
  }
  // Built from entries, so a key such as __proto__ stays an ordinary key.
  return Object.fromEntries([...byKey].map(([key, ops]) => {
    const names = Object.keys(ops);
    return [key, names.length === 1 && names[0] === '$eq' ? ops.$eq : ops];
  }));
}
