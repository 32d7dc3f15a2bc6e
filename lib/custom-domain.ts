import { Stack, Token } from 'aws-cdk-lib';
import { ApiMapping, DomainName, EndpointType, type HttpApi, type HttpStage, SecurityPolicy } from 'aws-cdk-lib/aws-apigatewayv2';
import { Certificate } from 'aws-cdk-lib/aws-certificatemanager';
import { ARecord, HostedZone, RecordTarget } from 'aws-cdk-lib/aws-route53';
import { ApiGatewayv2DomainProperties } from 'aws-cdk-lib/aws-route53-targets';
import { Construct } from 'constructs';
import { checkCertificateArn, checkCertificateRegion, checkCustomDomain, checkDomainName, checkHostedZoneId } from './validate.ts';

export interface CustomDomainProps {
  /** The name the callback URLs are on, e.g. `callbacks.example.com`. */
  readonly domainName: string;
  /** An ACM certificate covering `domainName`, in the stack's region. */
  readonly certificateArn: string;
  /**
   * The Route 53 hosted zone (its id and name) in which the stack creates the alias record of
   * `domainName`.
   * @default - no record: the user points `domainName` at the `target` output
   */
  readonly hostedZone?: { readonly id: string; readonly name: string };
}

/**
 * A regional API Gateway custom domain (TLS 1.2) mapped at its root to the API's `$default` stage, so
 * `https://<domainName>/<route>` reaches the same routes as the API's own URL; and, with a hosted
 * zone, the alias record that points the name at it.
 *
 * Nothing in the ingest depends on the URL a callback came in on: a root mapping leaves the route
 * (`routeKey`), the path and its parameters as on the API's own URL (payload 2.0's `rawPath` never
 * carries a mapping's path, and a root mapping has none), only `requestContext.domainName` and the
 * Host header name the custom domain; no provider's authentication covers the URL, the host or
 * the path (TeleSign signs the body, Standard Webhooks its id, time and body, Identomat's key is in
 * the body, the others hold a token in the path); and the source address REL-IDverify is checked
 * against is the caller's on both (neither a regional endpoint nor a regional custom domain adds
 * itself to X-Forwarded-For, AWS's answer at
 * https://www.repost.aws/zh-Hant/questions/QU-xMNlCuTT5m6fL60GYEcgg/what-does-the-x-forwarded-for-note-in-the-docs-mean).
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-custom-domain-names.html
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-mappings.html
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html (payload 2.0: rawPath and API mappings)
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-regional-api-custom-domain-create.html (the certificate in the API's region)
 */
export class CustomDomain extends Construct {
  /** The name, as given (`callbacks.example.com`). */
  public readonly name: string;
  public readonly domain: DomainName;
  public readonly mapping: ApiMapping;
  /** The alias record, when a hosted zone was given. */
  public readonly record?: ARecord;

  constructor(scope: Construct, id: string, props: CustomDomainProps & { readonly httpApi: HttpApi; readonly stage: HttpStage }) {
    super(scope, id);
    this.name = props.domainName;
    checkDomainName('domainName', props.domainName);
    checkCertificateArn('certificateArn', props.certificateArn);
    if (props.hostedZone) {
      checkHostedZoneId('hostedZoneId', props.hostedZone.id);
      checkDomainName('hostedZoneName', props.hostedZone.name);
    }
    checkCustomDomain({ ...props, hostedZoneId: props.hostedZone?.id, hostedZoneName: props.hostedZone?.name });
    // A region-agnostic stack (no env) has a token for a region, known only at deploy: the app
    // compares the region the CDK CLI deploys to instead (gateway-app.ts), when the CLI gives one.
    const region = Stack.of(this).region;
    if (!Token.isUnresolved(region)) checkCertificateRegion(props.certificateArn, region, props.domainName, 'the stack deploys to');

    this.domain = new DomainName(this, 'DomainName', {
      domainName: props.domainName,
      certificate: Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
      endpointType: EndpointType.REGIONAL,
      securityPolicy: SecurityPolicy.TLS_1_2,
    });
    // No mapping key: the root, so the callback paths are the same on both URLs.
    this.mapping = new ApiMapping(this, 'Mapping', { api: props.httpApi, domainName: this.domain, stage: props.stage });

    if (props.hostedZone) {
      const zone = HostedZone.fromHostedZoneAttributes(this, 'Zone', { hostedZoneId: props.hostedZone.id, zoneName: props.hostedZone.name });
      this.record = new ARecord(this, 'Alias', {
        zone,
        // With its trailing dot: the name as given, never read as relative to the zone.
        recordName: `${props.domainName}.`,
        target: RecordTarget.fromAlias(new ApiGatewayv2DomainProperties(this.domain.regionalDomainName, this.domain.regionalHostedZoneId)),
      });
    }
  }

  /** The host the custom domain's DNS record must point at (a CNAME, or an alias in Route 53). */
  public get target(): string {
    return this.domain.regionalDomainName;
  }
}
