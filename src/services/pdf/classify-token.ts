/**
 * Is this token a part number? Two strictness levels:
 * - 'labelled': the token sits in a part-number column or follows a PN:/P/N/MPN prefix, so we only
 *   rule out things that are clearly something else (dates, tax ids, prices, units...).
 * - 'free': the token was picked out of a description, so it must also look like a manufacturer
 *   part number: letters and digits mixed, 4-40 characters, nothing but -./+# besides.
 */
export type TokenContext = 'labelled' | 'free'

const CHARSET = /^[A-Za-z0-9][A-Za-z0-9\-./+#_]*$/

/** Tokens as they appear in running text, with their offsets. */
export function tokenize(text: string): Array<{ token: string; start: number; end: number }> {
  const out: Array<{ token: string; start: number; end: number }> = []
  // Unicode hyphens and the minus sign are hyphens (one character each: offsets stay valid).
  for (const m of text.replace(/[\u2010-\u2013\u2212]/g, '-').matchAll(/[^\s,;()[\]{}|"'<>]+/g)) {
    const cleaned = cleanToken(m[0])
    if (!cleaned) continue
    const start = m.index + m[0].indexOf(cleaned)
    out.push({ token: cleaned, start, end: start + cleaned.length })
  }
  return out
}

/** Drop punctuation that belongs to the sentence, not the code ("LM358N." "(BC847)" "P/N:"). */
export function cleanToken(raw: string): string {
  return raw.replace(/^[^A-Za-z0-9]+/, '').replace(/[^A-Za-z0-9+#]+$/, '')
}

export function isPartNumber(token: string, context: TokenContext): boolean {
  const t = token.trim()
  const min = context === 'free' ? 4 : 3
  if (t.length < min || t.length > 40 || !CHARSET.test(t)) return false
  const digits = (t.match(/\d/g) ?? []).length
  const letters = (t.match(/[A-Za-z]/g) ?? []).length
  if (digits === 0) return false // plain words, "N/A", "USB-C"
  if (letters === 0) {
    // Some real part numbers are all digits (Würth 744031220, Molex 43045-0412), but only where a
    // label says so; never the formatted numbers a purchase order is full of.
    if (context === 'free' || digits < 5 || /\./.test(t)) return false
    return !isFormattedNumber(t)
  }
  if (context === 'free' && digits < 2) return false
  if (/^[A-Z]?[a-z]{2,}\d{1,4}$/.test(t)) return false // "Item10", "page12": a word with a number glued on
  return !isMeasurement(t) && !isPackageOrStandard(t) && !isPackageWithValue(t) && !isLibraryName(t) && !isDocumentNumber(t) && !isDateOrTime(t) && !isUrl(t)
}

/**
 * EDA library and footprint names join words or values with underscores (HEADER_1X4_male,
 * R_0402_5MIL_DWS, 4B8_2.2k); manufacturer part numbers do not put a whole word or a value between
 * underscores.
 */
function isLibraryName(t: string): boolean {
  const pieces = t.split('_')
  return pieces.length > 1 && pieces.some((p) => /^[A-Za-z]{3,}$/.test(p) || (/[a-z]/i.test(p) && isMeasurement(p)))
}

/**
 * A package and a value strung together is a generic description or a shop's house code, not a
 * manufacturer part number: SMD0805-1K2-1, QFN-20_5x5mm, USB-3.5MM-DIP.
 */
function isPackageWithValue(t: string): boolean {
  const pieces = t.split(/[-_]/).filter(Boolean)
  return pieces.length > 1 && pieces.some((p) => PACKAGE.test(p) || FOOTPRINT.test(p)) && pieces.some((p) => isMeasurement(p))
}

/** NCM, CNPJ/CPF, CEP, phone numbers, dates in digit-only form. */
function isFormattedNumber(t: string): boolean {
  const plain = t.replace(/[-/]/g, '')
  if (/^\d{4}\.?\d{2}\.?\d{2}$/.test(t) && /^(84|85|90)/.test(plain)) return true // NCM of electronics
  if (/^\d{2}\.?\d{3}\.?\d{3}\/?\d{4}-?\d{2}$/.test(t) && (t.length > 14 || validCnpj(plain))) return true
  if (/^\d{3}\.?\d{3}\.?\d{3}-?\d{2}$/.test(t) && (t.length > 11 || validCpf(plain))) return true
  if (/^\d{5}-\d{3}$/.test(t)) return true // CEP
  if (/^(\d{2})?9?\d{4}-\d{4}$/.test(t)) return true // phone
  if (/^(55)?[1-9]{2}9?[2-9]\d{7}$/.test(t)) return true // phone with area code, mobile or landline
  if (isDateOrTime(t)) return true
  return false
}

export function validCpf(d: string): boolean {
  if (!/^\d{11}$/.test(d) || /^(\d)\1{10}$/.test(d)) return false
  const check = (n: number) => {
    let sum = 0
    for (let i = 0; i < n; i++) sum += Number(d[i]) * (n + 1 - i)
    const r = (sum * 10) % 11
    return r === 10 ? 0 : r
  }
  return check(9) === Number(d[9]) && check(10) === Number(d[10])
}

export function validCnpj(d: string): boolean {
  if (!/^\d{14}$/.test(d) || /^(\d)\1{13}$/.test(d)) return false
  const check = (n: number) => {
    const weights = n === 12 ? [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2] : [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
    let sum = 0
    for (let i = 0; i < n; i++) sum += Number(d[i]) * weights[i]!
    const r = sum % 11
    return r < 2 ? 0 : 11 - r
  }
  return check(12) === Number(d[12]) && check(13) === Number(d[13])
}

const UNIT =
  /^[±+~-]?\d+(?:[.,]\d+)?(?:[pnuµμmkKMGT]?(?:F|H|OHMS?|R|V|VAC|VDC|VRMS|A|AH|W|WH|VA|HZ|S|B|BITS?|BPS|BYTES?|DB|DBM|DBI)|[kKM]|[pnuµμ]|%|PPM|MM|CM|M|IN|MILS?|°C|ºC|C|K|AWG|PCS?|P[CÇ]S?|UN|UND|UNID|EA|RL|REELS?|X|VIAS|PINOS?|PINS?|P|WAY|CH|NM|LM|MCD|CD|G|KG|L|ML|MIN|H|HRS?|DIAS?|DAYS?)$/i
/** Resistor/capacitor shorthand: 4K7, 2R2, 0R47, 4n7. */
const RKM = /^\d+(?:[RKMUPµ]|n)\d{1,2}$/i

/** Values with units, alone or combined: 100nF, 10V, 1/4W, 5%, 100nF/50V, 3-17V, 10x10mm, 4K7. */
function isMeasurement(t: string): boolean {
  if (UNIT.test(t) || RKM.test(t)) return true
  // A reference letter glued to a value with a unit of two letters or more: Q12MHz, C10uF (not S1M, S1A).
  if (/^[A-Z]\d[\d.,]*[a-zµ]*[A-Za-z]{2,}$/i.test(t) && UNIT.test(t.slice(1)) && /[A-Za-zµ]{2,}$/.test(t.slice(1))) return true
  if (/^\d+(?:[.,]\d+)?(?:x\d+(?:[.,]\d+)?)+(?:mm|cm|m|in)?$/i.test(t)) return true // dimensions
  const parts = t.split(/[/~]|(?<=\d)[-x](?=[\d.])|(?<=[a-zA-Z%])-(?=\d)/i)
  if (parts.length > 1 && parts.every((p) => p === '' || /^\d+(?:[.,]\d+)?$/.test(p) || UNIT.test(p) || RKM.test(p))) {
    return parts.some((p) => UNIT.test(p) && !/^\d+(?:[.,]\d+)?$/.test(p))
  }
  return false
}

const PACKAGE =
  /^(?:SOT|SOD|SOIC|SO|SOP|TSSOP|HTSSOP|MSOP|VSSOP|SSOP|QSOP|TSOP|QFN|VQFN|WQFN|UQFN|TQFN|DFN|WDFN|UDFN|TDFN|WSON|VSON|USON|XSON|SON|LQFP|TQFP|QFP|PQFP|BGA|FBGA|LFBGA|DIP|PDIP|CDIP|SIP|SIL|DIL|TO|DO|SC|SMA|SMB|SMC|SMD|WLCSP|CSP|LGA|PLCC|D2PAK|DPAK|IPAK|SOJ|MELF|HSOP|ESOP|LCC|MICROSMP|POWERPAK|POWERSO)-?\d*(?:[-/]\d+)*[A-Z]{0,2}$/i

const STANDARD =
  /^(?:IP\d{2}K?|CAT-?\d[AE]?|USB-?\d(?:\.\d)?(?:-?[ABC])?|RJ-?\d{2}|DB-?\d{1,2}|DE-?9|DDR\d[LX]?|LPDDR\d[XE]?|PCIE?-?\d(?:\.\d)?|HDMI-?\d(?:\.\d)?|SATA-?\d|M\d+(?:[.,]\d+)?(?:X\d+(?:[.,]\d+)?)?|[A-Z]{1,3}\d{1,2}X\d{1,3}(?:MM)?|RS-?\d{3}[A-Z]?|(?:IEC|ISO|EN|UL|IPC|NBR|ASTM|DIN|IEEE|CISPR|JESD|MIL|NR)-?\d+(?:[-.:/]\d+)*[A-Z]?|AEC-?Q\d{3}|MSL-?\d|FR-?4|X\dR|C0G|NP0|Y5V|Z5U|CORTEX-?[AMR]\d+\+?|ARM\d+|I2C|I2S|CAN-?FD|WI-?FI-?\d?|BLE-?\d(?:\.\d)?|802\.\d+[A-Z]*|[2345]G|ROHS-?\d?|UL-?94-?V-?\d|E\d{2}|Q[1-4]|RM\d+(?:[.,]\d+)?(?:MM)?|(?:ID|OD|DIA)\d+(?:[.,/]\d+)*(?:MM|IN)?|\d+-?(?:BITS?|PINS?|PINOS?|POS|POSITIONS?|CONTACTS?|VIAS|WAYS?|CH|CHANNELS?|CANAIS|LAYERS?|CAMADAS|CORES?|PORTAS?|PORTS?|POLOS|POLES|FIOS|WIRES?|SLOTS?|KEYS?|TECLAS)|\d+(?:ST|ND|RD|TH)|V\d+(?:\.\d+)+|REV\.?-?[A-Z0-9]{1,3}|[RCLUQDJTYF]\d{1,3}|\d+(?:A|V|W)?\/\d+(?:A|V|W)?)$/i

/** Chip sizes with a component letter (R0402, C0805, RA1206, FB0805) and pin-count packages (8SOIC, 16-PDIP). */
const FOOTPRINT =
  /^(?:[A-Z]{0,3}_?(?:01005|0201|0402|0603|0805|1008|1206|1210|1806|1812|2010|2512)|\d{1,3}-?(?:SOIC|SOP|SSOP|TSSOP|MSOP|QFN|DFN|DIP|PDIP|CDIP|EDIP|SIP|QFP|LQFP|TQFP|BGA|SMD|TO\d*))$/i

/** A connector family with its pitch (XH2.54, XH-2.54, KF7.62, PH2.0): a kind of part, not an orderable one. */
const PITCH_SERIES = /^[A-Z]{1,4}-?(?:1\.0|1\.25|1\.27|1\.5|2\.0|2\.5|2\.54|3\.5|3\.81|3\.96|5\.0|5\.08|7\.5|7\.62)(?:MM)?$/i

/** Export-control and compliance classes: EAR99, 3A991, 5A992.c. */
const EXPORT_CLASS = /^(?:EAR99|\d[A-E]\d{3}(?:\.[a-z])?)$/i

/** Package outlines, footprints, interface and test standards, reference designators, ordinals, revisions. */
function isPackageOrStandard(t: string): boolean {
  return PACKAGE.test(t) || STANDARD.test(t) || FOOTPRINT.test(t) || PITCH_SERIES.test(t) || EXPORT_CLASS.test(t)
}

/** A package, footprint, standard or a value with its unit: what sits beside a part number without being one. */
export function isPackageOrMeasure(t: string): boolean {
  return isMeasurement(t) || isPackageOrStandard(t)
}

/** Order, invoice and quote numbers with their usual prefixes: PO-2024-0012, NF-123456, INV2024-7. */
function isDocumentNumber(t: string): boolean {
  return /^(?:PO|OC|NF|NFE|NFS|INV|PED|SO|OV|COT|QT|RFQ|REQ|RC|DOC|ORD|CTR)[-_/#.]?\d[\d\-/.]*$/i.test(t)
}

const MONTH = '(?:jan|fev|feb|mar|abr|apr|mai|may|jun|jul|ago|aug|set|sep|out|oct|nov|dez|dec)[a-z]*'
const DATE = [
  /^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$/,
  /^\d{4}[/.-]\d{1,2}[/.-]\d{1,2}$/,
  /^\d{1,2}\/\d{4}$/,
  new RegExp(`^\\d{1,2}[-/.]?${MONTH}[-/.]?\\d{2,4}$`, 'i'),
  new RegExp(`^${MONTH}[-/.]?\\d{2,4}$`, 'i'),
  /^\d{1,2}h\d{2}(min)?$/i,
  /^\d{4}-\d{2}-\d{2}T[\d:.]+Z?$/,
]

function isDateOrTime(t: string): boolean {
  return DATE.some((re) => re.test(t))
}

function isUrl(t: string): boolean {
  return /^(?:https?|ftp|www)\b/i.test(t) || /\.(?:com|br|net|org|gov|edu|io|de|cn|us|uk|jp|info|biz)(?:\.[a-z]{2})?(?:\/|$)/i.test(t)
}
