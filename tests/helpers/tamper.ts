/** The value with its last character changed: always a different string, unlike a fixed replacement. */
export const flipLast = (value: string) => `${value.slice(0, -1)}${value.endsWith('a') ? 'b' : 'a'}`;
