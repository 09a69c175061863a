/**
 * One ajv instance for the configuration's JSON schemas (config-schema.ts, cluster-file.ts), compiled
 * at first use, not at import. Start-up cost is what a rolling start of many agents on few cores
 * pays per agent (docs/MEMBERSHIP.md): compiling both schemas at import, each ajv instance checking its
 * schema against the draft-07 meta-schema and optimising the generated code, was ~30 % of an agent's
 * ~0.5 s of start-up CPU. The schemas are constants of this package, so the meta-schema check runs in
 * a test (test/node/config.test.ts), not on every start, and the generated code, run once per start,
 * is not worth optimising.
 */
import { Ajv, type AnySchema, type ValidateFunction } from 'ajv';

/** Options shared by the runtime instance and the test that checks the schemas against the meta-schema. */
export const AJV_OPTIONS = { allErrors: false, strict: true } as const;

let ajv: Ajv | null = null;

/** The validator of `schema`, compiled at the first call of the returned getter. */
export function lazyValidator<T>(schema: AnySchema): () => ValidateFunction<T> {
  let compiled: ValidateFunction<T> | null = null;
  return () => {
    ajv ??= new Ajv({ ...AJV_OPTIONS, validateSchema: false, code: { optimize: false } });
    compiled ??= ajv.compile<T>(schema);
    return compiled;
  };
}
