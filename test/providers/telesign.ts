import type { CallbackRequest } from '../../functions/providers/provider.ts';
import { telesign } from '../../functions/providers/telesign.ts';
import { editJson, hexOf, jsonContent, lifeDice, withJsonField, type ProviderKit, flatCredentials, fieldValues } from './kit.ts';

/** TeleSign: a signed body (`Authorization: TSA <customerId>:<HMAC of the raw body>`). */
export const telesignKit: ProviderKit = {
  provider: telesign,
  route: 'POST /callbacks/telesign',
  secret: (tag) => ({
    customerId: `${tag.toUpperCase()}-CUSTOMER-7731`,
    // Base64 of at least 16 bytes of key material, as the secret schema requires.
    apiKey: Buffer.from(`${tag}-telesign-api-key-0123456789`).toString('base64'),
  }),
  credentials: fieldValues(['customerId', 'apiKey']),
  ...flatCredentials(['customerId', 'apiKey']),
  requiredFields: ['reference_id', 'status'],
  sample: 'sms-dlr-success',
  otherStatus: (content) => editJson(content, (json) => void (json.status.code = 203)),
  withSubject: (sample, subjectId) => ({ ...sample, body: withJsonField(sample.body!, 'reference_id', subjectId) }),
  withoutCredential(request: CallbackRequest) {
    const { authorization: _removed, ...headers } = request.headers;
    return { ...request, headers };
  },
  tampered(request) {
    const body = Buffer.from(request.body);
    body[body.indexOf('reference_id') + 2] ^= 0x01;
    return { ...request, body };
  },

  // --- hostile-input suite (test/fuzz) ---

  // --- fault suite (test/faults) ---
  // A message queued (290), delivered to the handset (203), then delivered (200) or not (207).
  life(name) {
    const dice = lifeDice(name);
    const reference_id = hexOf(`telesign/${name}`, 32).toUpperCase();
    const dlr = (code: number, step: number) =>
      jsonContent({ reference_id, status: { code, description: 'fault suite', updated_on: dice.at(step).toUTCString() }, errors: [], sub_resource: 'sms' });
    return [dlr(290, 0), dlr(203, 1), dlr(dice.succeeds ? 200 : 207, 2)];
  },
  sendsStatusTime: true,

  // --- benchmark (bench/) ---
};
