import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getProvider } from '../../functions/providers/index.ts';
import { authenticRequest, findSample, shownRequestPath } from '../../local/samples.ts';
import { secretsFor } from '../providers/index.ts';

/** The request line `npm run send` prints: no phone number in full, however the query spells it. */

const esms = getProvider('esms');
const secret = secretsFor('fake-local-dev').esms;
const sample = findSample('esms', 'customer-care');
const RECIPIENT = new URLSearchParams(sample.query).get('phonenumber')!;
const MASKED = `${'*'.repeat(RECIPIENT.length - 3)}${RECIPIENT.slice(-3)}`;

/** The sample's request with its recipient written as `spelled` in the query. */
function pathWith(spelled: string): string {
  const query = sample.query!.replace(`phonenumber=${RECIPIENT}`, `phonenumber=${spelled}`);
  assert.notEqual(query, sample.query, 'the sample names its recipient');
  return authenticRequest(esms, secret, { query }).path;
}

describe('shownRequestPath: a recipient percent-encoded or form-encoded in the query', () => {
  // 0901888484 with spaces between its groups, as a URL can carry them.
  const spellings: Array<[string, string]> = [
    ['%20 for its spaces', '0901%20888%20484'],
    ["form encoding's + for its spaces", '0901+888+484'],
    ['every digit escaped', '%30%39%30%31%38%38%38%34%38%34'],
    ['its dashes escaped', '0901%2D888%2D484'],
    ['encoded twice, as eSMS encodes error_info', '0901%2520888%2520484'],
  ];
  for (const [how, spelled] of spellings) {
    test(`${how} (${spelled}): masked to its last three digits in place; --show-sensitive prints it as sent`, () => {
      // prepare
      const path = pathWith(spelled);
      // act
      const shown = shownRequestPath(esms, path, false);
      // assess
      assert.ok(shown.includes(`&phonenumber=${MASKED}&`), shown);
      assert.ok(shownRequestPath(esms, path, true).endsWith(sample.query!.replace(`phonenumber=${RECIPIENT}`, `phonenumber=${spelled}`)));
    });
  }

  test('the rest of the request line is printed as sent: the SMSID, the other fields, the token shortened', () => {
    // act
    const shown = shownRequestPath(esms, pathWith('0901%20888%20484'), false);
    // assess
    assert.equal(shown, `/callbacks/esms/${String(secret.token).slice(0, 4)}…?${sample.query!.replace(`phonenumber=${RECIPIENT}`, `phonenumber=${MASKED}`)}`);
  });
});
