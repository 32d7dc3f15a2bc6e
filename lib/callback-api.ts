import { Lazy, Stack } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  type CfnStage,
  HttpApi,
  type HttpMethod,
  HttpRoute,
  type HttpRouteIntegration,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { CustomDomain, type CustomDomainProps } from './custom-domain.ts';
import { checkSetting, SETTING_DEFAULTS } from './validate.ts';

export interface CallbackApiProps {
  /**
   * Steady-state requests per second allowed on each route.
   * @default 200
   */
  readonly throttleRateLimit?: number;
  /**
   * Requests allowed in a burst on each route.
   * @default 400
   */
  readonly throttleBurstLimit?: number;
  /**
   * How long access log lines are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: RetentionDays;
  /**
   * A custom domain the callback URLs are on (`https://callbacks.example.com/…`), mapped at its root
   * to the API's stage.
   * @default - none: the URLs are the API's own (`https://<api-id>.execute-api.<region>.amazonaws.com/…`)
   */
  readonly customDomain?: CustomDomainProps;
  /**
   * Whether the API's own execute-api URL stops answering, leaving only the custom domain (which
   * must then be given): every provider must already call the custom domain's URLs.
   * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-disable-default-endpoint.html
   * @see https://repost.aws/knowledge-center/api-gateway-disable-endpoint (a call to the disabled URL: 404 for an HTTP API)
   * @default false
   */
  readonly disableExecuteApiEndpoint?: boolean;
}

/**
 * One access log line per request. It names the route by its key (`GET /callbacks/esms/{token}`),
 * never by `$context.path`: the path carries the providers' secret tokens. Every value is one API
 * Gateway sets or measures itself; none is text the caller chose. The User-Agent is left out for
 * that reason: it is whatever the caller sends (a phone number, a fake field), and the source IP
 * already tells a provider from a forger.
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html
 */
export const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  requestTime: '$context.requestTime',
  routeKey: '$context.routeKey',
  status: '$context.status',
  ip: '$context.identity.sourceIp',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationStatus: '$context.integrationStatus',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  error: '$context.error.message',
} as const;

/**
 * Added to the access log line with a custom domain: the host name the caller used (the custom
 * domain, or `<api-id>.execute-api.<region>.amazonaws.com`): one of the names API Gateway routes to
 * this API, never free text. Left out without one, where it could only ever name the API's own URL.
 * @see https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-logging-variables.html (`$context.domainName`)
 */
export const ACCESS_LOG_DOMAIN_FIELD = { domainName: '$context.domainName' } as const;

/** A throttled HTTP API ($default stage, no path in its access logs) that routes take place on. */
export class CallbackApi extends Construct {
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogs: LogGroup;
  /** The custom domain, when one is given. */
  public readonly customDomain?: CustomDomain;
  private readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  private readonly routeSettings: Record<string, { ThrottlingRateLimit: number; ThrottlingBurstLimit: number }> = {};

  constructor(scope: Construct, id: string, props: CallbackApiProps = {}) {
    super(scope, id);
    this.throttle = {
      rateLimit: checkSetting('throttleRateLimit', props.throttleRateLimit ?? SETTING_DEFAULTS.throttleRateLimit),
      burstLimit: checkSetting('throttleBurstLimit', props.throttleBurstLimit ?? SETTING_DEFAULTS.throttleBurstLimit),
    };

    // HTTP API rather than REST: cheaper and lower latency, and nothing here needs REST features.
    this.httpApi = new HttpApi(this, 'HttpApi', {
      // Named after the stack (the stage), so the console tells two stages' APIs apart.
      apiName: Stack.of(this).stackName,
      description: 'Provider callbacks: one route per provider',
      // The stage is created below, where throttling and access logs can be set.
      createDefaultStage: false,
      // Set only when true: a stack without a custom domain keeps its template as it was.
      ...(props.disableExecuteApiEndpoint ? { disableExecuteApiEndpoint: true } : {}),
    });
    this.accessLogs = new LogGroup(this, 'AccessLogs', { retention: props.accessLogRetention ?? RetentionDays.ONE_MONTH });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: this.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        // With a custom domain, the host each request came in on: both URLs answer the same routes,
        // and this is how to tell which providers still call the API's own URL before turning it off.
        format: AccessLogFormat.custom(JSON.stringify(props.customDomain ? { ...ACCESS_LOG_FIELDS, ...ACCESS_LOG_DOMAIN_FIELD } : ACCESS_LOG_FIELDS)),
      },
    });
    // Explicit limits per route as well as the stage default: one provider's flood, or a forger
    // hammering a route, spends only that route's budget.
    const cfnStage = this.stage.node.defaultChild as CfnStage;
    cfnStage.routeSettings = Lazy.any({ produce: () => (Object.keys(this.routeSettings).length > 0 ? this.routeSettings : undefined) });

    if (props.disableExecuteApiEndpoint && !props.customDomain) {
      throw new Error('disableExecuteApiEndpoint=true needs domainName: without a custom domain the API would answer no URL at all, and every callback would be lost');
    }
    if (props.customDomain) this.customDomain = new CustomDomain(this, 'CustomDomain', { ...props.customDomain, httpApi: this.httpApi, stage: this.stage });
  }

  /** Adds a throttled route; the route is created in `scope` under the id `Route`. */
  public addRoute(scope: Construct, method: HttpMethod, path: string, integration: HttpRouteIntegration): HttpRoute {
    const route = new HttpRoute(scope, 'Route', {
      httpApi: this.httpApi,
      routeKey: HttpRouteKey.with(path, method),
      integration,
    });
    this.routeSettings[`${method} ${path}`] = {
      ThrottlingRateLimit: this.throttle.rateLimit,
      ThrottlingBurstLimit: this.throttle.burstLimit,
    };
    // Route settings name routes by key: the routes must exist before the stage refers to them.
    this.stage.node.addDependency(route);
    return route;
  }

  /**
   * The public URL of a route path (`/callbacks/…`), placeholders such as `{token}` kept: on the
   * custom domain when there is one (mapped at its root, so the path is the same), otherwise the
   * API's own.
   */
  public urlFor(path: string): string {
    const base = this.customDomain ? `https://${this.customDomain.name}/` : this.stage.url;
    return `${base}${path.replace(/^\//, '')}`;
  }
}
