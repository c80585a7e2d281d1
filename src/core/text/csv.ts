/**
 * RFC 4180 rows, after defusing cells a spreadsheet would run as a formula
 * (OWASP "CSV injection"): a leading quote makes them plain text.
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  let cell = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(cell)) cell = `'${cell}`;
  return /[",\r\n]/.test(cell) ? `"${cell.replaceAll('"', '""')}"` : cell;
}

export function csvRow(cells: readonly (string | number | null)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
