import { Schema } from "effect"

/**
 * Text that Postgres can store (text and jsonb): no NUL (U+0000) and no unpaired UTF-16
 * surrogate. Both are valid in a JSON string but make the database refuse the row (a 500);
 * checked at the schema so the answer is a 400 / INVALID_ARGUMENT naming the field.
 */
export const isStorable = (s: string): boolean => !s.includes("\u0000") && s.isWellFormed()

export const isStorableText = () =>
  Schema.makeFilter<string>(isStorable, {
    expected: "text without NUL characters or unpaired surrogates",
    message: "must not contain NUL (U+0000) or unpaired UTF-16 surrogates"
  })

/** A string that may be stored as it is. */
export const StorableText = Schema.String.check(isStorableText())
