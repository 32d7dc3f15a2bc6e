import { relid } from '../../functions/providers/relid.ts';
import { editJson, pathToken, pathTokenAuth, withJsonField, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

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

  // --- benchmark (bench/) ---
};
