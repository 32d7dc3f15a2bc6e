import { config } from 'zod/mini';
import en from 'zod/v4/locales/en.js';

/**
 * zod for every schema of the gateway (`import * as z from '…/core/zod.ts'`): the tree-shakable
 * `zod/mini` build, so a function bundles only the checks it uses. zod's classic build weighs
 * ~450 KB minified whatever is used (95 % of a Lambda bundle, ~40 ms of its cold start); the
 * schemas and what they accept are the same. English issue messages, as the classic build sets
 * them up: quarantined callbacks list them.
 *
 * The one module under functions/ that does something when imported: package.json's `sideEffects`
 * names it alone, so esbuild keeps it in every bundle that uses zod and may leave any other module
 * out of a bundle that uses none of its exports (each ingest bundle drops the providers it does not
 * serve). A new module that must run on import belongs in that list too.
 */
config(en());

export * from 'zod/mini';
