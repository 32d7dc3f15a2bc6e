import { temboplus } from '../../functions/providers/temboplus.ts';
import { editJson, pathToken, pathTokenAuth, withJsonField, type ProviderKit } from './kit.ts';

/** TemboPlus: a URL token, and every callback judged by the Transaction Status endpoint's answer. */
export const temboplusKit: ProviderKit = {
  provider: temboplus,
  route: 'POST /callbacks/temboplus/{token}',
  secret: (tag, options = {}) => ({
    token: pathToken(tag, 'temboplus'),
    apiToken: `${tag}-tembo-api-token`,
    // Nowhere real unless a suite runs a stand-in status endpoint.
    baseUrl: options.statusEndpoint ?? 'https://tembo.invalid',
  }),
  credentialFields: ['token'],
  requiredFields: ['partnerReference', 'status'],
  sample: 'remittance-completed',
  otherStatus: (content) => editJson(content, (json) => void (json.status = 'REVERSED')),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'partnerReference', subjectId) }),
  ...pathTokenAuth,

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---

  // --- benchmark (bench/) ---
};
