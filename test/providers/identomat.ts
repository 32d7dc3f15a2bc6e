import { identomat } from '../../functions/providers/identomat.ts';
import { altered, editJson, withJsonField, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

const KEY = 'callbackApiKey';

/** Identomat: the `callbackApiKey` carried in the JSON body. */
export const identomatKit: ProviderKit = {
  provider: identomat,
  route: 'POST /callbacks/identomat',
  secret: (tag) => ({ [KEY]: `${tag}-identomat-key-Jf5n0c` }),
  credentials: fieldValues([KEY]),
  ...flatCredentials([KEY]),
  requiredFields: ['type', 'sessionId'],
  sample: 'session-change-approved',
  otherStatus: (content) => editJson(content, (json) => void (json.result = 'REJECTED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'sessionId', subjectId) }),
  withoutCredential(request) {
    const json = JSON.parse(request.body.toString('utf8')) as Record<string, unknown>;
    delete json[KEY];
    return { ...request, body: Buffer.from(JSON.stringify(json)) };
  },
  tampered(request) {
    const json = JSON.parse(request.body.toString('utf8')) as Record<string, string>;
    json[KEY] = altered(json[KEY]);
    return { ...request, body: Buffer.from(JSON.stringify(json)) };
  },

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---

  // --- benchmark (bench/) ---
};
