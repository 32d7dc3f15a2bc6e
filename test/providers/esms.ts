import { esms } from '../../functions/providers/esms.ts';
import { editQuery, hexOf, lifeDice, pathToken, pathTokenAuth, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

/** eSMS: a GET whose query is the callback; a secret token in the URL path (eSMS signs nothing). */
export const esmsKit: ProviderKit = {
  provider: esms,
  route: 'GET /callbacks/esms/{token}',
  secret: (tag) => ({ token: pathToken(tag, 'esms') }),
  credentials: fieldValues(['token']),
  ...flatCredentials(['token']),
  requiredFields: ['SMSID', 'SendStatus'],
  sample: 'customer-care',
  otherStatus: (content) => editQuery(content, (params) => params.set('SendStatus', '7')),
  withSubject(sample, subjectId) {
    // SMSID, or ReferenceId for voice results, replaced in the raw query.
    const query = sample.query ?? '';
    for (const name of ['SMSID', 'ReferenceId']) {
      const pattern = new RegExp(`(^|&)(${name})=[^&]*`, 'i');
      if (pattern.test(query)) return { ...sample, query: query.replace(pattern, `$1$2=${encodeURIComponent(subjectId)}`) };
    }
    throw new Error('eSMS sample has neither SMSID nor ReferenceId');
  },
  ...pathTokenAuth,

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---
  // Sending (2), then 7, then delivered (5) or failed (4): tiers and ranks, since eSMS sends no time.
  life(name) {
    const SMSID = `${hexOf(`esms/${name}`, 32)}250`;
    const final = lifeDice(name).succeeds ? 'SendStatus=5&SendSuccess=1&SendFailed=0' : 'SendStatus=4&SendSuccess=0&SendFailed=1';
    return [`SMSID=${SMSID}&SendStatus=2`, `SMSID=${SMSID}&SendStatus=7`, `SMSID=${SMSID}&${final}`].map((query) => ({ query }));
  },
  sendsStatusTime: false,

  // --- benchmark (bench/) ---
};
