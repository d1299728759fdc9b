/**
 * The part of the Standard Schema interface (https://standardschema.dev, version 1)
 * that pgtq uses to check a handler's arguments. zod (3.24+ and 4), valibot and
 * arktype schemas implement it, so pgtq checks arguments with the user's own
 * schema library, whichever copy and version it is. The spec is meant to be
 * copied as a type rather than depended on, which is what this is.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': StandardSchemaProps<Input, Output>;
}

export interface StandardSchemaProps<Input = unknown, Output = Input> {
  readonly version: 1;
  readonly vendor: string;
  readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>;
  /** Present in types only: where the schema's input and output types are read from. */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

export type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: readonly StandardIssue[] };

export interface StandardIssue {
  readonly message: string;
  readonly path?: readonly (PropertyKey | { readonly key: PropertyKey })[] | undefined;
}

/** The argument list a schema accepts (what push takes). */
export type SchemaInput<S extends StandardSchemaV1> = Extract<
  NonNullable<S['~standard']['types']>['input'],
  unknown[]
>;
/** The argument list a schema produces (what the function receives). */
export type SchemaOutput<S extends StandardSchemaV1> = Extract<
  NonNullable<S['~standard']['types']>['output'],
  unknown[]
>;

/** Whether `value` implements the Standard Schema interface (an arktype schema is a function). */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  const props = (value as Partial<StandardSchemaV1>)['~standard'];
  return typeof props === 'object' && props !== null && typeof props.validate === 'function';
}
