import assert from 'node:assert/strict';

type Json = Record<string, any>;

/**
 * Whether a CloudWatch Logs JSON filter pattern matches one log line, for the syntax these filters
 * use: comparisons `$.field = "text"`, `$.field = 401`, `$.field >= 4`, `$.field IS FALSE`, in parentheses, joined by
 * `&&` and `||` (never mixed without parentheses, as CloudWatch requires). Anything else fails the
 * test, so a new kind of pattern gets a matcher before it is trusted.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/FilterAndPatternSyntax.html
 */
export function matchesFilterPattern(pattern: string, line: string): boolean {
  const body = /^\{\s*(.*?)\s*\}$/.exec(pattern)?.[1];
  assert.ok(body, `not a JSON filter pattern: ${pattern}`);
  const event = JSON.parse(line) as Json;
  const tokens = body.match(/\(|\)|&&|\|\||\$\.\w+\s+IS\s+(?:TRUE|FALSE)|\$\.\w+\s*(?:>=|<=|!=|=|>|<)\s*(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)/g) ?? [];
  assert.equal(tokens.join('').replace(/\s/g, ''), body.replace(/\s/g, ''), `unsupported syntax in ${pattern}`);
  let at = 0;
  const comparison = (token: string): boolean => {
    // `IS TRUE` / `IS FALSE`: the field exists and is that boolean.
    const bool = /^\$\.(\w+)\s+IS\s+(TRUE|FALSE)$/.exec(token);
    if (bool) return event[bool[1]] === (bool[2] === 'TRUE');
    const [, field, op, literal] = /^\$\.(\w+)\s*(>=|<=|!=|=|>|<)\s*(.*)$/.exec(token)!;
    return compareToLiteral(event[field], op, literal);
  };
  const term = (): boolean => {
    const token = tokens[at++];
    if (token !== '(') return comparison(token);
    const value = expression();
    assert.equal(tokens[at++], ')', `unbalanced ${pattern}`);
    return value;
  };
  const expression = (): boolean => {
    let value = term();
    let joiner: string | undefined;
    while (tokens[at] === '&&' || tokens[at] === '||') {
      assert.ok(joiner === undefined || joiner === tokens[at], `&& and || mixed without parentheses in ${pattern}`);
      joiner = tokens[at++];
      const next = term();
      value = joiner === '&&' ? value && next : value || next;
    }
    return value;
  };
  const result = expression();
  assert.equal(at, tokens.length, `trailing tokens in ${pattern}`);
  return result;
}

/** A field's value against a filter's literal (quoted text, or a number), as CloudWatch compares them. */
export function compareToLiteral(value: unknown, op: string, literal: string): boolean {
  if (literal.startsWith('"')) return op === '=' ? value === JSON.parse(literal) : op === '!=' ? value !== JSON.parse(literal) : assert.fail(`${op} on text`);
  if (typeof value !== 'number') return false;
  const n = Number(literal);
  return { '=': value === n, '!=': value !== n, '>=': value >= n, '<=': value <= n, '>': value > n, '<': value < n }[op]!;
}
