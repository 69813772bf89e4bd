import { createHash } from 'node:crypto'
import type { Result } from './contract.js'

// The simulator's "knowledge": exact answers for the part numbers of the contract's
// example messages, and a deterministic generic answer for everything else, so the
// same part number always gets the same classification. The generic answers are items of the
// official NCM table (data/ncm/); the contract's own LM358N example (8542.39.90) is not one, and
// is kept as the contract wrote it: what a real AI server may answer.

const KNOWN_RESULTS: Record<string, Result> = {
  BC847BLT1G: {
    partnumber: 'BC847BLT1G',
    ncm: '85412120',
    description: 'Transistor de silicio NPN de uso geral, encapsulamento SOT-23, corrente de coletor de ate 100 mA.',
    exception: '00',
    nve: null,
    fabricante: 'ONSEMI',
    endereco: '5701 North Pima Road, Scottsdale, Arizona, 85250, EUA',
    pais: 'CHINA, REPUBLICA POPULAR',
    confidence_score: 0.95,
  },
  CL10C330JB8NNNC: {
    partnumber: 'CL10C330JB8NNNC',
    ncm: '85322410',
    description: 'Capacitor ceramico multicamadas (MLCC) de 33pF, 50V, C0G/NP0, 0603.',
    exception: '00',
    nve: null,
    fabricante: 'Samsung Electro-Mechanics',
    endereco: '150, Maeyeong-ro, Yeongtong-gu, Suwon-si, Gyeonggi-do',
    pais: 'Republica da Coreia',
    confidence_score: 0.98,
  },
  LM358N: {
    partnumber: 'LM358N',
    ncm: '85423990',
    description: 'Circuito integrado monolitico, amplificador operacional duplo de baixa potencia, encapsulamento DIP-8.',
    exception: '00',
    nve: null,
    fabricante: 'Texas Instruments',
    endereco: '12500 TI Boulevard, Dallas, Texas, 75243, EUA',
    pais: 'ESTADOS UNIDOS',
    confidence_score: 0.93,
  },
}

/** Part numbers the AI server fails on inside a batch (batch-item-failed.json), though it classifies them alone. */
const FAILING_IN_BATCH = new Set(['LM358N'])

interface Manufacturer {
  name: string
  address: string
  country: string
}

const MANUFACTURERS = {
  murata: { name: 'Murata Manufacturing', address: '1-10-1, Higashikotari, Nagaokakyo-shi, Kyoto, 617-8555, Japao', country: 'JAPAO' },
  samsung: { name: 'Samsung Electro-Mechanics', address: '150, Maeyeong-ro, Yeongtong-gu, Suwon-si, Gyeonggi-do', country: 'Republica da Coreia' },
  kemet: { name: 'KEMET', address: '1 East Broward Boulevard, Fort Lauderdale, Florida, 33301, EUA', country: 'MEXICO' },
  nexperia: { name: 'Nexperia', address: 'Jonkerbosplein 52, 6534 AB Nijmegen, Holanda', country: 'CHINA, REPUBLICA POPULAR' },
  onsemi: { name: 'ONSEMI', address: '5701 North Pima Road, Scottsdale, Arizona, 85250, EUA', country: 'CHINA, REPUBLICA POPULAR' },
  vishay: { name: 'Vishay Intertechnology', address: '63 Lancaster Avenue, Malvern, Pennsylvania, 19355, EUA', country: 'TAIWAN (FORMOSA)' },
  ti: { name: 'Texas Instruments', address: '12500 TI Boulevard, Dallas, Texas, 75243, EUA', country: 'ESTADOS UNIDOS' },
  microchip: { name: 'Microchip Technology', address: '2355 West Chandler Boulevard, Chandler, Arizona, 85224, EUA', country: 'TAILANDIA' },
  st: { name: 'STMicroelectronics', address: '39, Chemin du Champ des Filles, 1228 Plan-les-Ouates, Genebra, Suica', country: 'MALASIA' },
  yageo: { name: 'Yageo', address: '3F, 233-1, Baoqiao Road, Xindian District, New Taipei City', country: 'TAIWAN (FORMOSA)' },
  panasonic: { name: 'Panasonic Industry', address: '1006, Kadoma, Kadoma City, Osaka, 571-8501, Japao', country: 'JAPAO' },
} satisfies Record<string, Manufacturer>

interface Family {
  prefixes: string[]
  ncm: string
  description: string
  manufacturer: Manufacturer
}

// First matching prefix wins; the order only matters where prefixes overlap.
const FAMILIES: Family[] = [
  { prefixes: ['GRM'], ncm: '85322410', description: 'Capacitor ceramico multicamadas (MLCC) para montagem em superficie.', manufacturer: MANUFACTURERS.murata },
  { prefixes: ['CL'], ncm: '85322410', description: 'Capacitor ceramico multicamadas (MLCC) para montagem em superficie.', manufacturer: MANUFACTURERS.samsung },
  { prefixes: ['C0G'], ncm: '85322410', description: 'Capacitor ceramico multicamadas (MLCC) com dieletrico C0G/NP0.', manufacturer: MANUFACTURERS.kemet },
  { prefixes: ['BC', 'MMBT'], ncm: '85412120', description: 'Transistor bipolar de silicio de uso geral, encapsulamento SOT-23.', manufacturer: MANUFACTURERS.nexperia },
  { prefixes: ['2N'], ncm: '85412120', description: 'Transistor bipolar de silicio de uso geral, encapsulamento TO-92.', manufacturer: MANUFACTURERS.onsemi },
  { prefixes: ['1N'], ncm: '85411032', description: 'Diodo retificador de silicio, exceto fotodiodos e diodos emissores de luz.', manufacturer: MANUFACTURERS.vishay },
  { prefixes: ['BAT', 'BAV'], ncm: '85411022', description: 'Diodo de sinal de silicio para montagem em superficie.', manufacturer: MANUFACTURERS.nexperia },
  { prefixes: ['ATMEGA'], ncm: '85423190', description: 'Circuito integrado monolitico, microcontrolador de 8 bits com memoria flash.', manufacturer: MANUFACTURERS.microchip },
  { prefixes: ['STM32'], ncm: '85423190', description: 'Circuito integrado monolitico, microcontrolador ARM Cortex-M de 32 bits.', manufacturer: MANUFACTURERS.st },
  { prefixes: ['LM', 'NE', 'TL'], ncm: '85423999', description: 'Circuito integrado monolitico analogico (amplificador, regulador ou temporizador).', manufacturer: MANUFACTURERS.ti },
  { prefixes: ['RC'], ncm: '85332120', description: 'Resistor fixo de pelicula espessa para montagem em superficie.', manufacturer: MANUFACTURERS.yageo },
  { prefixes: ['CRCW'], ncm: '85332120', description: 'Resistor fixo de pelicula espessa para montagem em superficie.', manufacturer: MANUFACTURERS.vishay },
  { prefixes: ['ERJ'], ncm: '85332120', description: 'Resistor fixo de pelicula espessa para montagem em superficie.', manufacturer: MANUFACTURERS.panasonic },
]

const FALLBACK: Omit<Family, 'prefixes'> = {
  ncm: '85423999',
  description: 'Circuito integrado eletronico monolitico, outros.',
  manufacturer: MANUFACTURERS.ti,
}

/** The classification the simulated AI server gives for a part number. */
export function classify(partnumber: string): Result {
  const known = KNOWN_RESULTS[partnumber]
  if (known) return { ...known }
  const upper = partnumber.toUpperCase()
  const family = FAMILIES.find((f) => f.prefixes.some((p) => upper.startsWith(p))) ?? FALLBACK
  return {
    partnumber,
    ncm: family.ncm,
    description: family.description,
    exception: '00',
    nve: null,
    fabricante: family.manufacturer.name,
    endereco: family.manufacturer.address,
    pais: family.manufacturer.country,
    confidence_score: confidenceFor(partnumber),
  }
}

/** Whether this part number fails when it is one item of a batch. */
export function failsInBatch(partnumber: string): boolean {
  return FAILING_IN_BATCH.has(partnumber)
}

/** 0.60 to 0.99, stable per part number. */
function confidenceFor(partnumber: string): number {
  const n = createHash('sha256').update(partnumber).digest().readUInt32BE(0)
  return (60 + (n % 40)) / 100
}
