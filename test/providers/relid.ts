import { relid } from '../../functions/providers/relid.ts';
import { editJson, hexOf, jsonContent, lifeDice, pathToken, pathTokenAuth, withJsonField, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

/** The action labels test secrets declare (what the samples' labels mean). */
export const RELID_APPROVE_LABELS = ['Approved', 'Accept'];
export const RELID_REJECT_LABELS = ['Rejected', 'Reject'];

/** REL-IDverify: a URL token (plus an optional source-IP allow-list); declared action labels. */
export const relidKit: ProviderKit = {
  provider: relid,
  route: 'POST /callbacks/relid/{token}',
  secret: (tag) => ({ token: pathToken(tag, 'relid'), approveLabels: RELID_APPROVE_LABELS, rejectLabels: RELID_REJECT_LABELS }),
  credentials: fieldValues(['token']),
  ...flatCredentials(['token']),
  requiredFields: ['notification_uuid', 'status'],
  sample: 'callback-two-way',
  otherStatus: (content) => editJson(content, (json) => void (json.status = 'EXPIRED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'notification_uuid', subjectId) }),
  ...pathTokenAuth,

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---
  // A notification ACTIVE, then answered with a declared approve label, or EXPIRED.
  life(name, secret) {
    const dice = lifeDice(name);
    const h = hexOf(`relid/${name}`, 32);
    const notification_uuid = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
    const common = { user_id: 'fault-suite', notification_uuid, delivery_status: 'NOTIFIED', verification_mode: 'REL-ID' };
    const [approved] = secret.approveLabels as string[];
    return [
      { ...common, status: 'ACTIVE', response_code: 0, update_ts: dice.at(0).toISOString() },
      dice.succeeds
        ? { ...common, status: 'UPDATED', response_code: 0, action_response: approved, update_ts: dice.at(1).toISOString() }
        : { ...common, status: 'EXPIRED', response_code: 1, update_ts: dice.at(1).toISOString() },
    ].map(jsonContent);
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
