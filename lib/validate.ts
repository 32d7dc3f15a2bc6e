/**
 * Early checks for construct props and CDK context. Each error names the setting and shows the bad
 * value, so a typo in `-c maxReceiveCount=…` is found at synth time, not after a deploy.
 */

/** Allowed range of every numeric setting, and whether it must be whole. */
export const NUMERIC_SETTINGS = {
  /** SQS accepts 1–1000 receives in a redrive policy. */
  maxReceiveCount: { min: 1, max: 1000, integer: true },
  eventRetentionDays: { min: 1, max: 36_500, integer: true },
  sensitiveRetentionHours: { min: 1, max: 24 * 365, integer: true },
  throttleRateLimit: { min: 1, max: 100_000, integer: false },
  throttleBurstLimit: { min: 1, max: 100_000, integer: true },
  maxMessageAgeSeconds: { min: 60, max: 14 * 24 * 3600, integer: true },
  /**
   * The ingest's limit can only be lowered: a quarantined callback is stored whole in one DynamoDB
   * item (400 KB), its body in base64 when JSON escaping would make it larger, and 256 KiB of
   * base64 is about 342 KB.
   */
  maxBodyBytes: { min: 1024, max: 256 * 1024, integer: true },
  /** How long a function uses a secret it read; also how long a rotation waits before the provider switches. */
  secretCacheSeconds: { min: 1, max: 3600, integer: true },
  /** 401 answers per provider in 5 minutes above which the 401 alarm fires. */
  unauthorizedAlarmThreshold: { min: 1, max: 1_000_000, integer: true },
  /** Confirmation mismatches / not-founds in 5 minutes at which their alarm fires. */
  mismatchAlarmThreshold: { min: 1, max: 100_000, integer: true },
  notFoundAlarmThreshold: { min: 1, max: 100_000, integer: true },
} as const;

export type NumericSetting = keyof typeof NUMERIC_SETTINGS;

/** The value, if it is within the setting's range; otherwise an error naming both. */
export function checkSetting(name: NumericSetting, value: number): number {
  const { min, max, integer } = NUMERIC_SETTINGS[name];
  const ok = integer ? Number.isInteger(value) : Number.isFinite(value);
  if (!ok || value < min || value > max) {
    throw new Error(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** One e-mail address (an SNS e-mail subscription takes exactly one). */
export function checkEmail(name: string, value: string): string {
  if (!/^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/.test(value)) {
    throw new Error(`${name} must be one e-mail address, got ${JSON.stringify(value)}`);
  }
  return value;
}
