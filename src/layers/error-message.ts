/** The message of an Error, or the value as text (for logs and error details). */
export const errorMessage = (error: unknown): string => error instanceof Error ? error.message : String(error)
