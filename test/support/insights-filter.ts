import assert from 'node:assert/strict';
import { compareToLiteral } from './filter-pattern.ts';

type Json = Record<string, any>;

/**
 * Whether one JSON log line passes every `filter` command of a CloudWatch Logs Insights query, for
 * the syntax our saved queries use: `field = "text"`, `field != "text"`, numeric `=`, `!=`, `<`,
 * `<=`, `>`, `>=`, `field like /regex/`, joined by `and` / `or` (`and` binding tighter), in
 * parentheses. Anything else fails the test, so a new kind of filter gets a matcher before it is trusted.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/CWL_QuerySyntax-operations-functions.html
 */
export function passesInsightsFilters(query: string, line: string): boolean {
  const event = JSON.parse(line) as Json;
  const filters = query
    .split(/\n\|\s*/)
    .map((command) => command.trim())
    .filter((command) => command.startsWith('filter '))
    .map((command) => command.slice('filter '.length));
  assert.ok(filters.length > 0, `no filter in ${query}`);
  return filters.every((filter) => evaluate(filter, event));
}

function evaluate(filter: string, event: Json): boolean {
  const tokens =
    filter.match(/\(|\)|\band\b|\bor\b|\w+\s+like\s+\/(?:[^/\\]|\\.)+\/|\w+\s*(?:>=|<=|!=|=|>|<)\s*(?:"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?)/g) ?? [];
  assert.equal(tokens.join('').replace(/\s/g, ''), filter.replace(/\s/g, ''), `unsupported syntax in ${filter}`);
  let at = 0;
  const comparison = (token: string): boolean => {
    const like = /^(\w+)\s+like\s+\/(.+)\/$/.exec(token);
    if (like) return typeof event[like[1]] === 'string' && new RegExp(like[2]).test(event[like[1]]);
    const [, field, op, literal] = /^(\w+)\s*(>=|<=|!=|=|>|<)\s*(.*)$/.exec(token)!;
    const value = event[field];
    // Logs Insights: a line without the field matches no comparison, `!=` included.
    return value !== undefined && compareToLiteral(value, op, literal);
  };
  const term = (): boolean => {
    const token = tokens[at++];
    if (token !== '(') return comparison(token);
    const value = or();
    assert.equal(tokens[at++], ')', `unbalanced ${filter}`);
    return value;
  };
  const and = (): boolean => {
    let value = term();
    while (tokens[at] === 'and') {
      at++;
      value = term() && value;
    }
    return value;
  };
  const or = (): boolean => {
    let value = and();
    while (tokens[at] === 'or') {
      at++;
      value = and() || value;
    }
    return value;
  };
  const result = or();
  assert.equal(at, tokens.length, `trailing tokens in ${filter}`);
  return result;
}
