import { identomat } from '../../functions/providers/identomat.ts';
import { altered, editJson, hexOf, jsonContent, lifeDice, withJsonField, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

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
  life(name) {
    // One session-change per life: the latest report received is the session's status, so two
    // changes would make the final state depend on arrival order, which shuffled concurrent
    // traffic cannot promise (moves back are tested in test/integration/worker.test.ts). The
    // video update and the OTP instruction are stored and counted but place no status.
    const sessionId = hexOf(`identomat/${name}`, 40);
    return [
      { type: 'video-call-status-update', sessionId, roomId: 'room-faults', roomStatus: 'ended', compositionStatus: 'available', videoFileStatus: 'available', videoFileId: `vf-${hexOf(`identomat/${name}/file`, 8)}` },
      { type: 'one-time-password', sessionId, text: `Your code is ${Number.parseInt(hexOf(`identomat/${name}/code`, 4), 16) % 10_000}`, phoneNumber: '+995512345678' },
      { type: 'session-change', sessionId, result: lifeDice(name).succeeds ? 'APPROVED' : 'REJECTED' },
    ].map(jsonContent);
  },
  // A session-change reports the current status and carries no time of its own.
  sendsStatusTime: false,

  // --- benchmark (bench/) ---
};
