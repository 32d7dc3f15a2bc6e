import * as z from '../shared/zod.ts';

/**
 * A provider secret: its fields plus an optional `previous` holding the values being rotated out.
 * Requests signed with either are accepted until `previous` is removed (rotation without downtime).
 */
export function secretWithRotation<TShape extends z.core.$ZodLooseShape>(shape: TShape) {
  return z.object({ ...shape, previous: z.optional(z.partial(z.object(shape))) });
}
