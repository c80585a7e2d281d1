/**
 * Row ids as requests carry them: in a path (`/console/incidents/12`), a query string (`?before=40`)
 * or a form field. Every id column is PostgreSQL's `integer` (db/schema-pg), so an id is a whole
 * number from 1 to 2^31 − 1; SQLite's are 64-bit, but no row here is ever given one past that.
 * Anything else names no row, and is answered as such (a page: not found; an action: refused)
 * before it reaches a query: PostgreSQL refuses the query itself for a number out of its range or
 * not whole (22003, 22P02), which would be a server error where SQLite finds no row.
 */

/** The highest id a row can have: PostgreSQL's `integer`. */
export const MAX_ROW_ID = 2_147_483_647;

export function isRowId(value: number): boolean {
  return Number.isInteger(value) && value > 0 && value <= MAX_ROW_ID;
}

/** The id a text (or number) names, as `Number()` reads it, or null when no row can have it. */
export function rowId(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const id = Number(value);
  return isRowId(id) ? id : null;
}
