import { Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';
import type { CallbackGatewayStack } from './callback-gateway-stack.ts';

/**
 * Every cdk-nag AwsSolutions finding this stack keeps on purpose, in one place, each acknowledged
 * on the one resource it concerns (never stack-wide) and with the reason it is right here.
 * A finding not listed here fails the synth.
 */
export function acknowledgeNagFindings(stack: CallbackGatewayStack): void {
  const acknowledge = (scope: IConstruct, rule: string, reason: string) =>
    Validations.of(scope).acknowledge({ id: `AwsSolutions::AwsSolutions-${rule}`, reason });

  for (const ingress of stack.ingresses) {
    acknowledge(
      ingress.route,
      'APIG4',
      `${ingress.provider.displayName} cannot sign with IAM or present Cognito/JWT tokens. Its callbacks are authenticated by ` +
        `the ingest function with the provider's own scheme (${ingress.provider.authSummary}), compared in constant time ` +
        'against the exact bytes received; anything else is answered 401 and never queued.',
    );
    acknowledge(
      ingress.secret,
      'SMG4',
      'The values are issued by the provider (API keys, customer ids) or must equal what is set in the provider console ' +
        '(path tokens), so an automatic rotation could not update the other side and would break callbacks. Rotation is ' +
        'done by the user: the secret accepts a "previous" value, valid alongside the new one until removed (README).',
    );
  }

  // The stream event source grants dynamodb:ListStreams, an action with no resource to scope it to
  // (Resource "*"); the stream itself (DescribeStream, GetRecords, GetShardIterator) is named.
  const publisherPolicy = stack.events.publisher.role?.node.tryFindChild('DefaultPolicy');
  if (publisherPolicy) {
    acknowledge(
      publisherPolicy,
      'IAM5[Resource::*]',
      'Granted by the DynamoDB stream event source: dynamodb:ListStreams only, which IAM does not scope to a resource. ' +
        'Reading records is granted on this table\'s stream ARN alone, and PutEvents on this stack\'s bus alone.',
    );
  }
  acknowledge(
    stack.events.deadLetterQueue,
    'SQS3',
    'This queue is itself a dead-letter destination: the on-failure destination of the publisher\'s DynamoDB stream ' +
      'event source (Lambda sends what names the changes it gave up on). Nothing consumes it to fail again, so a queue ' +
      'behind it would never receive anything; its own alarm (EventsDeadLetterQueueNotEmpty) watches it.',
  );
}
