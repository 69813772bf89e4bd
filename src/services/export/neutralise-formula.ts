// OWASP, CSV Injection: a spreadsheet reads a cell as a formula when it starts with = + - @, a tab
// or a carriage return, also behind leading white space or quotes. The full-width = + - @ are
// read as formulas too (Apple Numbers normalises them; csv-stringify's escape_formulas lists them).
const FORMULA_START = /^[\s"']*[=+\-@\uFF1D\uFF0B\uFF0D\uFF20]|^[\t\r]/

/** Text for a spreadsheet cell: one that would be read as a formula is prefixed with `'`, which makes it text. */
export function neutraliseFormula(text: string): string {
  return FORMULA_START.test(text) ? `'${text}` : text
}
