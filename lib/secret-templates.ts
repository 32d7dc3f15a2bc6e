/**
 * The first value of each provider's Secrets Manager secret, frozen.
 *
 * CloudFormation writes a secret's value again whenever the property it comes from changes: a new
 * `SecretString` replaces the value, and any change to `GenerateSecretString` (its template, the
 * generated key, the length) generates a new one, template fields included. Either would throw
 * away the credentials the user filled in and the path tokens the providers were told. See
 * https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-secretsmanager-secret.html
 * (`SecretString`, `GenerateSecretString`) and the open CloudFormation issue "Unintended password
 * update on SecretStringTemplate update" (aws-cloudformation/cloudformation-coverage-roadmap#2210).
 *
 * So the stack never derives these properties from code that may change (a provider's
 * `secretPlaceholder`, a token length): it takes them from this table, written once per provider
 * and never edited. The entries below are exactly what earlier versions of the stack synthesized,
 * so upgrading changes nothing in a deployed secret. To change what a deployed secret holds, use
 * `aws secretsmanager put-secret-value`; to change what a *new* provider's secret starts as, add
 * its entry before its first deploy.
 */

/** How a secret's first value is made: literal JSON, or JSON with one generated field. */
export type InitialSecret =
  | { readonly secretString: string }
  | {
      readonly generate: {
        /** JSON of the other fields (the generated one is added to it). */
        readonly template: string;
        /** The field that receives the generated value (a path token). */
        readonly key: string;
        /** Letters and digits only (`ExcludePunctuation`): the token goes into a URL path unescaped. */
        readonly length: number;
      };
    };

/** Never edit an entry: see the comment at the top. Add one for a new provider, once. */
export const INITIAL_SECRETS: Readonly<Record<string, InitialSecret>> = {
  telesign: { secretString: '{"customerId":"REPLACE_ME","apiKey":"REPLACE_ME"}' },
  esms: { generate: { template: '{}', key: 'token', length: 40 } },
  temboplus: { generate: { template: '{"apiToken":"REPLACE_ME","baseUrl":"https://sandbox.temboplus.com"}', key: 'token', length: 40 } },
  relid: { generate: { template: '{}', key: 'token', length: 40 } },
  identomat: { secretString: '{"callbackApiKey":"REPLACE_ME"}' },
  'standard-webhooks': { secretString: '{"sources":"REPLACE_ME"}' },
};

/** The entry a new provider would get from its placeholder today: what the error below suggests. */
export function suggestedInitialSecret(placeholder: Readonly<Record<string, unknown>>, generatedField?: string): InitialSecret {
  if (!generatedField) return { secretString: JSON.stringify(placeholder) };
  const { [generatedField]: _generated, ...rest } = placeholder;
  return { generate: { template: JSON.stringify(rest), key: generatedField, length: 40 } };
}

/**
 * The frozen first value of a provider's secret. A provider without an entry fails the synth with
 * the line to add (deploying it without one would tie the secret to code that may change).
 */
export function initialSecretOf(provider: {
  readonly id: string;
  readonly secretPlaceholder: Readonly<Record<string, unknown>>;
  readonly generatedSecretField?: string;
}): InitialSecret {
  const entry = Object.hasOwn(INITIAL_SECRETS, provider.id) ? INITIAL_SECRETS[provider.id] : undefined;
  if (entry) {
    const frozenKey = 'generate' in entry ? entry.generate.key : undefined;
    if (frozenKey !== provider.generatedSecretField) {
      throw new Error(
        `provider ${provider.id} now generates ${provider.generatedSecretField ? `"${provider.generatedSecretField}"` : 'no field'}, but its secret ` +
          `was created generating ${frozenKey ? `"${frozenKey}"` : 'no field'} (lib/secret-templates.ts). A deployed secret cannot change how it was ` +
          'made without losing its value: keep the field, or give the provider a new id (and so a new secret).',
      );
    }
    return entry;
  }
  const suggestion = suggestedInitialSecret(provider.secretPlaceholder, provider.generatedSecretField);
  throw new Error(
    `provider ${provider.id} has no initial secret in lib/secret-templates.ts. Add, once and before its first deploy: ` +
      `${JSON.stringify(provider.id)}: ${JSON.stringify(suggestion)}. An entry is never edited afterwards: a change would reset the deployed secret.`,
  );
}
