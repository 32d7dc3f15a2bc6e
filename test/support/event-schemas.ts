import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { DETAIL_TYPES, type DetailType } from '../../functions/core/publish.ts';
import { REPO_ROOT } from '../../lib/gateway-function.ts';

/**
 * The published JSON Schemas (schemas/*.json, draft 2020-12), compiled by Ajv with its format
 * checks (date-time, uri), and the event a PutEvents entry becomes when EventBridge delivers it to a
 * rule's target (the envelope fields: https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-events-structure.html).
 */

export const SCHEMA_FILES: Readonly<Record<DetailType, string>> = {
  [DETAIL_TYPES.statusChanged]: 'schemas/callback-status-changed.json',
  [DETAIL_TYPES.instruction]: 'schemas/callback-instruction.json',
};

export type Json = Record<string, any>;

export function readSchema(detailType: DetailType): Json {
  return JSON.parse(readFileSync(join(REPO_ROOT, SCHEMA_FILES[detailType]), 'utf8')) as Json;
}

const compiled = new Map<DetailType, ValidateFunction>();

/** The schema's validator (strict: an unknown keyword in a schema file fails here). */
export function validatorFor(detailType: DetailType): ValidateFunction {
  let validate = compiled.get(detailType);
  if (!validate) {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    validate = ajv.compile(readSchema(detailType));
    compiled.set(detailType, validate);
  }
  return validate;
}

/** What EventBridge delivers to a target for this entry (time to the second, as EventBridge writes it). */
export function deliveredEvent(entry: PutEventsRequestEntry, id = '00000000-0000-4000-8000-000000000000'): Json {
  return {
    version: '0',
    id,
    'detail-type': entry.DetailType,
    source: entry.Source,
    account: '123456789012',
    time: (entry.Time ?? new Date()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'eu-west-1',
    resources: entry.Resources ?? [],
    detail: JSON.parse(entry.Detail ?? '{}'),
  };
}

/** The schema errors of a delivered event, readable (empty when it validates). */
export function schemaErrors(event: Json): string[] {
  const validate = validatorFor(event['detail-type'] as DetailType);
  return validate(event) ? [] : (validate.errors ?? []).map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
}

/** Detail members a schema does not declare (every member an event carries must be documented). */
export function undeclaredDetailMembers(event: Json): string[] {
  const declared = Object.keys(readSchema(event['detail-type'] as DetailType).$defs.detail.properties as Json);
  return Object.keys(event.detail as Json).filter((name) => !declared.includes(name));
}
