/**
 * A mediasoup object as a plain JSON value: keys whose value is `undefined` dropped (mediasoup 3.27
 * leaves e.g. `tcpType: undefined` on UDP candidates, and the HTTP API's JSON codec refuses it).
 */
export const plainJson = (value: unknown): unknown => JSON.parse(JSON.stringify(value))
